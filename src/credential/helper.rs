//! The helper's side of one exchange with git, in gix-credentials' shape: read the request,
//! ask an answering function, check and write the reply. What the answer is belongs to the
//! caller (`codecommit::answer_git` for `gitkit credential`).

use std::io::{BufRead, Write};

use super::{Context, ParseError, WriteError};

/// The operation git asks of a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    Store,
    Erase,
}

/// What went wrong in one exchange; `E` is the answering function's own error.
#[derive(Debug, thiserror::Error)]
pub enum Error<E> {
    /// git's request could not be read.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The answering function failed.
    #[error(transparent)]
    Answer(E),
    /// The reply could not be written, or holds a value git would misread.
    #[error(transparent)]
    Reply(#[from] WriteError),
}

impl<E> Error<E> {
    /// Whether the exchange itself failed (a bad request, a reply that cannot be written),
    /// rather than the answering function.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Parse(_) | Error::Reply(_))
    }
}

/// Runs one helper call: git's request on `input`, `answer`'s reply (if any) on `output`.
///
/// `get` writes what `answer` returns, or nothing when it returns `None`: git then goes on to
/// its next helper. `store` and `erase` never write: git reads no reply to them. Their request
/// is read to its end either way, and one that cannot be parsed is not answered and not an
/// error, as git ignores what such a call reports.
pub fn run<E>(
    operation: Operation,
    input: impl BufRead,
    output: impl Write,
    answer: impl FnOnce(Operation, Context) -> Result<Option<Context>, E>,
) -> Result<(), Error<E>> {
    let context = match (operation, Context::read_from(input)) {
        (_, Ok(context)) => context,
        (Operation::Get, Err(error)) => return Err(error.into()),
        (Operation::Store | Operation::Erase, Err(_)) => return Ok(()),
    };
    let reply = answer(operation, context).map_err(Error::Answer)?;
    match (operation, reply) {
        (Operation::Get, Some(reply)) => Ok(reply.write_to(output)?),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::secret::Secret;

    const REQUEST: &str = "protocol=https\nhost=example.com\npath=r.git\n\n";

    /// What one exchange did: its result, what was written, and what the answerer was given.
    type Exchange = (
        Result<(), Error<&'static str>>,
        String,
        Option<(Operation, Context)>,
    );

    /// Runs `operation` on `input`, answered with `reply`.
    fn exchange(
        operation: Operation,
        input: &str,
        reply: Result<Option<Context>, &'static str>,
    ) -> Exchange {
        let mut output = Cursor::new(Vec::new());
        let mut asked = None;
        let result = run(operation, Cursor::new(input), &mut output, |op, context| {
            asked = Some((op, context));
            reply
        });
        let written = String::from_utf8(output.into_inner()).expect("utf-8");
        (result, written, asked)
    }

    fn answer() -> Context {
        Context {
            username: Some(Secret::new("user".into())),
            password: Some(Secret::new("pass".into())),
            ..Context::default()
        }
    }

    #[test]
    fn get_writes_the_answer() {
        let (result, written, asked) = exchange(Operation::Get, REQUEST, Ok(Some(answer())));
        result.expect("answered");
        assert_eq!(written, "username=user\npassword=pass\n");
        let (operation, context) = asked.expect("the answerer was asked");
        assert_eq!(operation, Operation::Get);
        assert_eq!(context.host.as_deref(), Some("example.com"));
        assert_eq!(context.path.as_deref(), Some("r.git"));
    }

    #[test]
    fn get_unanswered_writes_nothing() {
        let (result, written, asked) = exchange(Operation::Get, REQUEST, Ok(None));
        result.expect("no error");
        assert_eq!(written, "");
        assert!(asked.is_some());
    }

    #[test]
    fn store_and_erase_never_write() {
        for operation in [Operation::Store, Operation::Erase] {
            let input = "protocol=https\nhost=example.com\nusername=u\npassword=p\n\n";
            let (result, written, asked) = exchange(operation, input, Ok(Some(answer())));
            result.expect("no error");
            assert_eq!(written, "", "{operation:?}");
            let (asked_operation, context) = asked.expect("the answerer was asked");
            assert_eq!(asked_operation, operation);
            assert_eq!(
                context.password.as_ref().map(|p| p.expose().as_str()),
                Some("p")
            );

            let (result, written, asked) = exchange(operation, "garbage\n", Ok(None));
            result.expect("a bad store or erase request is not an error");
            assert_eq!(written, "");
            assert!(asked.is_none(), "not asked about a bad request");
        }
    }

    #[test]
    fn a_bad_request_is_refused_without_asking() {
        for input in [
            "protocol=https\nno equals\n\n",
            "host=a\0b\n\n",
            "host=a\r\n\n",
        ] {
            let (result, written, asked) = exchange(Operation::Get, input, Ok(Some(answer())));
            let error = result.expect_err(input);
            assert!(matches!(error, Error::Parse(_)), "{input:?}: {error:?}");
            assert!(error.is_bad_input());
            assert_eq!(written, "");
            assert!(asked.is_none(), "{input:?}");
        }
    }

    #[test]
    fn the_answerers_error_is_passed_on() {
        let (result, written, _) = exchange(Operation::Get, REQUEST, Err("no keys"));
        let error = result.expect_err("the answerer failed");
        assert!(matches!(error, Error::Answer("no keys")), "{error:?}");
        assert!(!error.is_bad_input());
        assert_eq!(written, "");
    }

    #[test]
    fn a_reply_with_a_new_line_or_nul_is_refused_and_nothing_written() {
        let replies = [
            Context {
                password: Some(Secret::new("pass\nhost=evil.example".into())),
                ..answer()
            },
            Context {
                host: Some("a\rb".into()),
                ..answer()
            },
            Context {
                wwwauth: vec!["x\0y".into()],
                ..answer()
            },
        ];
        for reply in replies {
            let (result, written, _) = exchange(Operation::Get, REQUEST, Ok(Some(reply)));
            let error = result.expect_err("refused");
            assert!(
                matches!(error, Error::Reply(WriteError::ForbiddenCharacter { .. })),
                "{error:?}"
            );
            assert!(error.is_bad_input());
            assert_eq!(written, "", "nothing of a bad reply is written");
            assert!(
                !error.to_string().contains("evil"),
                "the value is not shown: {error}"
            );
        }
    }
}
