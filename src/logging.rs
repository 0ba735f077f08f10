//! Logs to stderr, off unless asked for with `-v` or `GITKIT_LOG`.
//!
//! A bare level (`GITKIT_LOG=debug`) applies to gitkit's own events only: the AWS SDK's own
//! debug output is opted into by naming its target (`GITKIT_LOG=aws_config=debug`).

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8) {
    let directives = match (std::env::var("GITKIT_LOG").ok(), verbose) {
        (Some(spec), _) if !spec.is_empty() => scope_bare_levels(&spec),
        (_, 0) => return,
        (_, 1) => "gitkit=debug".to_string(),
        (_, _) => "gitkit=trace".to_string(),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("gitkit=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn scope_bare_levels(spec: &str) -> String {
    spec.split(',')
        .map(|directive| {
            let is_bare_level = matches!(
                directive.trim().to_ascii_lowercase().as_str(),
                "error" | "warn" | "info" | "debug" | "trace"
            );
            if is_bare_level {
                format!("gitkit={}", directive.trim())
            } else {
                directive.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_levels_are_scoped_to_gitkit() {
        assert_eq!(super::scope_bare_levels("debug"), "gitkit=debug");
        assert_eq!(
            super::scope_bare_levels("info,aws_config=debug"),
            "gitkit=info,aws_config=debug"
        );
    }
}
