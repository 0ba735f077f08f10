//! The key=value description of a credential that git and its helpers exchange.
//!
//! See `git help credential`, section "INPUT/OUTPUT FORMAT". Modelled on gitoxide's
//! `gix-credentials` `protocol::Context`.

use std::io::{self, BufRead, Write};

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the credential line {line:?} has no '='")]
    MissingEquals { line: String },
    #[error("the value of '{key}' contains a NUL or carriage return")]
    ForbiddenCharacter { key: String },
    #[error("the credential input is not UTF-8")]
    NotUtf8,
    #[error("could not read the credential input")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// git would read the rest of the value as a line of its own, or cut it short.
    #[error("not answering: the value of '{key}' contains a NUL, carriage return or new line")]
    ForbiddenCharacter { key: String },
    #[error("could not write the answer to git")]
    Io(#[from] io::Error),
}

/// One credential description, as git writes it to a helper or a helper answers.
///
/// Keys git may repeat (`capability[]`, `wwwauth[]`, `state[]`) are kept in order; keys this
/// helper does not know are ignored, as git asks of helpers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Context {
    pub protocol: Option<String>,
    /// The host, with `:port` when the URL named one.
    pub host: Option<String>,
    /// The URL's path without its leading slash; present only with `credential.useHttpPath`.
    pub path: Option<String>,
    /// A secret too: with temporary AWS credentials it is `ACCESS_KEY_ID%SESSION_TOKEN`.
    pub username: Option<Secret<String>>,
    pub password: Option<Secret<String>>,
    /// When the password stops being valid, in seconds since the Unix epoch (git 2.41+).
    pub password_expiry_utc: Option<u64>,
    pub capability: Vec<String>,
    pub wwwauth: Vec<String>,
    pub state: Vec<String>,
}

impl Context {
    /// Reads `key=value` lines up to a blank line or the end of input.
    pub fn read_from(input: impl BufRead) -> Result<Self, ParseError> {
        let mut context = Context::default();
        for line in input.split(b'\n') {
            let line = line?;
            if line.is_empty() {
                break;
            }
            let line = std::str::from_utf8(&line).map_err(|_| ParseError::NotUtf8)?;
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| ParseError::MissingEquals {
                    line: line.chars().take(40).collect(),
                })?;
            if value.contains(['\0', '\r']) {
                return Err(ParseError::ForbiddenCharacter {
                    key: key.to_owned(),
                });
            }
            context.set(key, value);
        }
        Ok(context)
    }

    fn set(&mut self, key: &str, value: &str) {
        let value = value.to_owned();
        match key {
            "protocol" => self.protocol = Some(value),
            "host" => self.host = Some(value),
            "path" => self.path = Some(value),
            "username" => self.username = Some(Secret::new(value)),
            "password" => self.password = Some(Secret::new(value)),
            "password_expiry_utc" => self.password_expiry_utc = value.parse().ok(),
            "url" => self.set_url(&value),
            "capability[]" => self.capability.push(value),
            "wwwauth[]" => self.wwwauth.push(value),
            "state[]" => self.state.push(value),
            _ => {}
        }
    }

    /// Splits `url=scheme://[user@]host[:port][/path]` into its parts, as git does.
    fn set_url(&mut self, url: &str) {
        let Some((protocol, rest)) = url.split_once("://") else {
            return;
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (username, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(Secret::new(percent_decode(user))), host),
            None => (None, authority),
        };
        self.protocol = Some(protocol.to_owned());
        self.host = Some(host.to_owned());
        self.path = (!path.is_empty()).then(|| percent_decode(path));
        if username.is_some() {
            self.username = username;
        }
    }

    /// Writes the fields that are set, one `key=value` line each, in git's order.
    ///
    /// Every value is checked first: one with a NUL, carriage return or new line is refused
    /// and nothing at all is written.
    pub fn write_to(&self, mut out: impl Write) -> Result<(), WriteError> {
        let Context {
            protocol,
            host,
            path,
            username,
            password,
            password_expiry_utc,
            capability,
            wwwauth,
            state,
        } = self;
        let expiry = password_expiry_utc.map(|expiry| expiry.to_string());
        let lines = capability
            .iter()
            .map(|value| ("capability[]", value.as_str()))
            .chain(protocol.as_deref().map(|value| ("protocol", value)))
            .chain(host.as_deref().map(|value| ("host", value)))
            .chain(path.as_deref().map(|value| ("path", value)))
            .chain(
                username
                    .as_ref()
                    .map(|value| ("username", value.expose().as_str())),
            )
            .chain(
                password
                    .as_ref()
                    .map(|value| ("password", value.expose().as_str())),
            )
            .chain(
                expiry
                    .as_deref()
                    .map(|value| ("password_expiry_utc", value)),
            )
            .chain(wwwauth.iter().map(|value| ("wwwauth[]", value.as_str())))
            .chain(state.iter().map(|value| ("state[]", value.as_str())));
        let mut reply = String::new();
        for (key, value) in lines {
            if value.contains(['\0', '\r', '\n']) {
                return Err(WriteError::ForbiddenCharacter {
                    key: key.to_owned(),
                });
            }
            reply.push_str(key);
            reply.push('=');
            reply.push_str(value);
            reply.push('\n');
        }
        out.write_all(reply.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<Context, ParseError> {
        Context::read_from(input.as_bytes())
    }

    #[test]
    fn reads_the_keys_git_sends_for_a_codecommit_url() {
        let context = parse(
            "capability[]=authtype\ncapability[]=state\nprotocol=https\n\
             host=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/demo\n\
             wwwauth[]=Basic realm=\"x\"\n\n",
        )
        .expect("valid input");
        assert_eq!(context.protocol.as_deref(), Some("https"));
        assert_eq!(
            context.host.as_deref(),
            Some("git-codecommit.us-east-1.amazonaws.com")
        );
        assert_eq!(context.path.as_deref(), Some("v1/repos/demo"));
        assert_eq!(context.capability, ["authtype", "state"]);
        assert_eq!(context.wwwauth, ["Basic realm=\"x\""]);
    }

    #[test]
    fn stops_at_the_blank_line_and_ignores_unknown_keys() {
        let context = parse("host=a\nfuture_key=1\n\nhost=b\n").expect("valid input");
        assert_eq!(context.host.as_deref(), Some("a"));
    }

    #[test]
    fn reads_to_the_end_without_a_blank_line() {
        let context = parse("protocol=https\nhost=a").expect("valid input");
        assert_eq!(context.host.as_deref(), Some("a"));
    }

    #[test]
    fn splits_a_url_into_its_parts() {
        let context = parse(
            "url=https://me%40corp@git-codecommit.eu-west-1.amazonaws.com:443/v1/repos/a%20b\n",
        )
        .expect("valid input");
        assert_eq!(context.protocol.as_deref(), Some("https"));
        assert_eq!(
            context.host.as_deref(),
            Some("git-codecommit.eu-west-1.amazonaws.com:443")
        );
        assert_eq!(context.path.as_deref(), Some("v1/repos/a b"));
        assert_eq!(
            context.username.as_ref().map(|u| u.expose().as_str()),
            Some("me@corp")
        );
    }

    #[test]
    fn refuses_nul_and_carriage_return_in_values() {
        assert!(matches!(
            parse("host=a\0b\n"),
            Err(ParseError::ForbiddenCharacter { key }) if key == "host"
        ));
        assert!(matches!(
            parse("path=a\rb\n"),
            Err(ParseError::ForbiddenCharacter { key }) if key == "path"
        ));
        assert!(matches!(
            parse("host=a\r\n"),
            Err(ParseError::ForbiddenCharacter { .. })
        ));
        assert!(matches!(
            parse("nonsense\n"),
            Err(ParseError::MissingEquals { .. })
        ));
    }

    #[test]
    fn writes_what_is_set_and_keeps_password_and_session_token_out_of_debug() {
        let context = Context {
            username: Some(Secret::new("AKID%FwoGZXIvYXdzSESSIONTOKEN".into())),
            password: Some(Secret::new("20260101T000000Zabc".into())),
            password_expiry_utc: Some(1_767_225_600),
            ..Context::default()
        };
        let mut out = Vec::new();
        context.write_to(&mut out).expect("write to a Vec");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "username=AKID%FwoGZXIvYXdzSESSIONTOKEN\npassword=20260101T000000Zabc\n\
             password_expiry_utc=1767225600\n"
        );
        let debug = format!("{context:?}");
        assert!(!debug.contains("abc"), "{debug}");
        assert!(
            !debug.contains("SESSIONTOKEN"),
            "the session token: {debug}"
        );
    }
}
