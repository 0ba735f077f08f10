//! What wires it all together on a machine that forgets: `gitkit setup` and its undo,
//! `gitkit doctor`, the SageMaker lifecycle scripts and the CloudFormation template.

pub mod binary;
pub mod deploy;
pub mod doctor;
pub mod files;
pub mod gitconfig;
pub mod lifecycle;
pub mod report;
pub mod run;
pub mod state;
pub mod undo;

use std::path::PathBuf;

pub use report::{Line, Report};
pub use run::{Choices, Done, Options, SetupError, setup};
pub use state::Saved;

/// Where everything setup touches lives.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The user's home folder.
    pub home: PathBuf,
    pub gitkit_home: PathBuf,
    /// The running binary.
    pub exe: PathBuf,
    /// The file `git config --global` writes.
    pub global_gitconfig: PathBuf,
    /// The crontab program.
    pub crontab: PathBuf,
}

impl Layout {
    /// `$GITKIT_HOME/bin/gitkit`: the copy every hook, helper and cron line names.
    pub fn bin(&self) -> PathBuf {
        self.gitkit_home.join("bin/gitkit")
    }

    /// The gitkit-owned git config file that the global one includes.
    pub fn include_file(&self) -> PathBuf {
        self.gitkit_home.join("gitconfig")
    }

    /// `init.templateDir`.
    pub fn template_dir(&self) -> PathBuf {
        self.gitkit_home.join("git-template")
    }

    pub fn template_hook(&self) -> PathBuf {
        self.template_dir().join("hooks/post-commit")
    }

    pub fn bash_completion(&self) -> PathBuf {
        self.gitkit_home.join("completions/gitkit.bash")
    }

    /// `~/.local/bin/gitkit`, so that `gitkit` is on PATH again after a restart.
    pub fn path_link(&self) -> PathBuf {
        self.home.join(".local/bin/gitkit")
    }

    pub fn bashrc(&self) -> PathBuf {
        self.home.join(".bashrc")
    }
}

/// The folder whose repositories setup hooks: the saved `--workspace-root`, else `~/SageMaker`
/// where it is a folder.
pub fn workspace_root(layout: &Layout, saved: Option<&Saved>) -> Option<PathBuf> {
    saved.and_then(|s| s.workspace_root.clone()).or_else(|| {
        let default = layout.home.join("SageMaker");
        default
            .is_dir()
            .then(|| default.canonicalize().unwrap_or(default))
    })
}
