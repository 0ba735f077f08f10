//! `gitkit schedule`: a periodic snapshot through the user's crontab, one line per target,
//! marked so that it can be replaced or removed without touching the user's own lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MARKER: &str = "# gitkit schedule:";
/// Settings a cron job would not otherwise see; never credentials.
const PASSED_ON: &[&str] = &[
    "GITKIT_HOME",
    "GITKIT_STORE",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
];

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` is not a schedule cron can keep")]
    BadInterval(String),
    #[error("could not run crontab; is cron installed?")]
    NoCrontab(#[source] std::io::Error),
    #[error("crontab failed: {0}")]
    Crontab(String),
    #[error(transparent)]
    Unsafe(#[from] super::ControlCharacter),
}

/// What is snapshotted: one repository, or every repository under a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Repository(PathBuf),
    All(PathBuf),
}

impl Target {
    fn marker(&self) -> String {
        let marker = match self {
            Target::Repository(dir) => format!("{MARKER} {}", dir.display()),
            Target::All(dir) => format!("{MARKER} --all {}", dir.display()),
        };
        escape_percent(&marker)
    }

    fn args(&self) -> String {
        match self {
            Target::Repository(dir) => format!("-C {}", quote(&dir.to_string_lossy())),
            Target::All(dir) => format!("--all {}", quote(&dir.to_string_lossy())),
        }
    }
}

/// An interval cron can keep exactly: minutes dividing an hour, hours dividing a day, or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    minutes: u32,
}

impl Schedule {
    /// `15m`, `30min`, `1h`, `6h`, `1d`.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let bad = || ScheduleError::BadInterval(text.to_string());
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let number: u32 = number.parse().map_err(|_| bad())?;
        let minutes = match unit {
            "m" | "min" | "mins" | "minutes" => number,
            "h" | "hour" | "hours" => number.checked_mul(60).ok_or_else(bad)?,
            "d" | "day" | "days" if number == 1 => 24 * 60,
            _ => return Err(bad()),
        };
        if minutes == 0 {
            return Err(bad());
        }
        let exact = (minutes < 60 && 60 % minutes == 0)
            || (minutes % 60 == 0 && minutes < 24 * 60 && (24 * 60) % minutes == 0)
            || minutes == 24 * 60;
        if !exact {
            return Err(bad());
        }
        Ok(Self { minutes })
    }

    /// The five cron fields.
    fn cron(&self) -> String {
        match self.minutes {
            m if m < 60 => format!("*/{m} * * * *"),
            m if m < 24 * 60 => format!("0 */{} * * *", m / 60),
            _ => "0 0 * * *".to_string(),
        }
    }
}

/// The crontab line that snapshots `target` on `schedule` with `gitkit`. Refused where any
/// value in it holds a control character: cron would read a new line as a line of its own.
pub fn line(
    schedule: Schedule,
    target: &Target,
    gitkit: &Path,
    env: &[(String, String)],
) -> Result<String, ScheduleError> {
    let into = "the crontab";
    let passed: Vec<&(String, String)> = env
        .iter()
        .filter(|(key, _)| PASSED_ON.contains(&key.as_str()))
        .collect();
    for (key, value) in &passed {
        super::refuse_control_characters(key.as_str(), value, into)?;
    }
    let dir = match target {
        Target::Repository(dir) | Target::All(dir) => dir,
    };
    super::refuse_control_characters(
        format!("the path {}", dir.display()),
        &dir.to_string_lossy(),
        into,
    )?;
    super::refuse_control_characters(
        format!("gitkit's path {}", gitkit.display()),
        &gitkit.to_string_lossy(),
        into,
    )?;
    let settings: String = passed
        .iter()
        .map(|(key, value)| format!("{key}={} ", quote(value)))
        .collect();
    Ok(format!(
        "{} {settings}{} hook scheduled {} >/dev/null 2>&1 {}",
        schedule.cron(),
        quote(&gitkit.to_string_lossy()),
        target.args(),
        target.marker()
    ))
}

/// Puts `new_line` for `target` in the crontab, or takes it out (`None`); other lines stay.
/// Returns whether the crontab changed. `crontab` is the program to run (normally `crontab`).
pub fn update(
    crontab: &Path,
    target: &Target,
    new_line: Option<&str>,
) -> Result<bool, ScheduleError> {
    let current = read(crontab)?;
    let marker = target.marker();
    let mut lines: Vec<&str> = current
        .lines()
        .filter(|line| !line.ends_with(&marker))
        .collect();
    if let Some(new_line) = new_line {
        lines.push(new_line);
    }
    let mut updated = lines.join("\n");
    if !updated.is_empty() {
        updated.push('\n');
    }
    if updated == current {
        return Ok(false);
    }
    write(crontab, &updated)?;
    Ok(true)
}

fn read(crontab: &Path) -> Result<String, ScheduleError> {
    let output = Command::new(crontab)
        .arg("-l")
        .output()
        .map_err(ScheduleError::NoCrontab)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let message = String::from_utf8_lossy(&output.stderr);
    if message.contains("no crontab") {
        Ok(String::new())
    } else {
        Err(ScheduleError::Crontab(message.trim().to_string()))
    }
}

fn write(crontab: &Path, text: &str) -> Result<(), ScheduleError> {
    let mut child = Command::new(crontab)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ScheduleError::NoCrontab)?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .map_err(ScheduleError::NoCrontab)?;
    let output = child.wait_with_output().map_err(ScheduleError::NoCrontab)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ScheduleError::Crontab(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}

/// cron turns `%` into a new line anywhere in a command.
fn escape_percent(text: &str) -> String {
    text.replace('%', r"\%")
}

/// One shell word cron runs as written: `%` escaped, quoted only where it must be.
fn quote(text: &str) -> String {
    super::shell_word(&escape_percent(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_cron_can_keep() {
        let cron = |text| Schedule::parse(text).map(|s| s.cron());
        assert_eq!(cron("15m").expect("valid"), "*/15 * * * *");
        assert_eq!(cron("1h").expect("valid"), "0 */1 * * *");
        assert_eq!(cron("6h").expect("valid"), "0 */6 * * *");
        assert_eq!(cron("1d").expect("valid"), "0 0 * * *");
        for bad in ["45m", "5h", "0m", "2d", "h", "10", "1w"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_passes_on_settings_but_never_credentials() {
        let env = vec![
            ("GITKIT_STORE".to_string(), "s3://b/p".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "secret".to_string()),
        ];
        let text = line(
            Schedule::parse("1h").expect("valid"),
            &Target::Repository("/home/me/SageMaker/my repo".into()),
            Path::new("/usr/local/bin/gitkit"),
            &env,
        )
        .expect("plain values");
        assert_eq!(
            text,
            "0 */1 * * * GITKIT_STORE=s3://b/p /usr/local/bin/gitkit hook scheduled \
             -C '/home/me/SageMaker/my repo' >/dev/null 2>&1 \
             # gitkit schedule: /home/me/SageMaker/my repo"
        );
    }

    #[test]
    fn line_refuses_control_characters_anywhere() {
        let every = Schedule::parse("1h").expect("valid");
        let repo = Target::Repository("/home/me/repo".into());
        let gitkit = Path::new("/usr/local/bin/gitkit");
        let env = |value: &str| vec![("AWS_PROFILE".to_string(), value.to_string())];
        assert!(line(every, &repo, gitkit, &env("p\n* * * * * evil")).is_err());
        assert!(line(every, &repo, gitkit, &env("p\r")).is_err());
        assert!(line(every, &repo, gitkit, &env("p\u{85}")).is_err());
        let odd = Target::All("/home/me/a\nb".into());
        assert!(line(every, &odd, gitkit, &env("p")).is_err());
        assert!(line(every, &repo, Path::new("/bin/\tgitkit"), &env("p")).is_err());
        // Variables that are not passed on are not looked at.
        let other = vec![("OTHER".to_string(), "a\nb".to_string())];
        assert!(line(every, &repo, gitkit, &other).is_ok());
    }
}
