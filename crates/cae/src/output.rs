//! Where a command may write: the one guard for every path a user names (`-o`, `--out`,
//! `--npy`, `--grid`, `--sheet`, ...), so that no command loses the user's files or a run's.
//! The rules:
//!
//! 1. A run's own files ([`RunDir::owns`]: weights, checkpoint, config, metrics, `recon/`, ...)
//!    are never written by a command that did not make them, `--force` or not: `cae export RUN
//!    -o RUN/best.bpk` would destroy the weights it reads. Symlinked folders are followed.
//! 2. An existing file is replaced only when asked ([`Overwrite::Replace`], `--force`).
//!    Without it, the check is made again when the file is put in place
//!    ([`crate::atomic::write_atomic_new`]), so a file that appeared meanwhile survives too.
//! 3. An output folder must be new or empty. With `--force` it may hold other files: they stay,
//!    and only files of the names the command writes are replaced.
//! 4. A new run folder (`train --out`, `import -o`, `demo -o`) must be new or empty, never a
//!    run. With `--force` it may hold other files, but never one of a run's names (a
//!    `metrics.csv` of the user's is not the run's to replace): that is refused by name.
//!
//! "Empty" ignores what cae itself leaves behind: a run's `.lock` and temporary files.

use crate::atomic::{TempNames, is_temp_name, write_atomic, write_atomic_new};
use crate::run::{ARTIFACT_DIRS, ARTIFACTS, RunDir, lock::LOCK_FILE};
use std::collections::BTreeSet;
use std::io;
use std::path::{Component, Path, PathBuf};

/// What a command may do with what is already at its output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Refuse an existing file or a non-empty folder (the default).
    #[default]
    Refuse,
    /// Replace existing files of the names written (`--force`); a run's files stay refused.
    Replace,
}

impl Overwrite {
    /// `--force`.
    pub fn from_force(force: bool) -> Overwrite {
        if force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        }
    }
}

/// Why a command may not write where it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "{path}: is {rel} of the run {run}; no command writes over a run's own files, even with --force: pick another path"
    )]
    RunFile {
        path: String,
        run: String,
        rel: String,
    },
    #[error("{0}: already exists; pass --force to replace it, or pick another path")]
    Exists(String),
    #[error("{0}: is a folder; give a file path")]
    IsDir(String),
    #[error("{0}: is a file, not a folder")]
    NotDir(String),
    #[error(
        "{0}: already holds files; pass --force to write into it (other files stay), or pick a new folder"
    )]
    NotEmpty(String),
    #[error(
        "{0}: already holds a run; continue it with `cae train --resume {0}` or pick another folder"
    )]
    HoldsRun(String),
    #[error(
        "{dir}: holds {name}, which a new run would write over; even with --force cae never replaces files it did not make: move it away or pick another folder"
    )]
    WouldReplace { dir: String, name: String },
    #[error("{0}: written twice by one command (two inputs give the same output name)")]
    Twice(String),
    #[error("{path}: cannot write: {error}")]
    Write { path: String, error: io::Error },
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// The run and the path inside it when `path` is one of a run's own files (rule 1).
fn run_file(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let resolved = resolve(path);
    resolved.ancestors().skip(1).find_map(|run| {
        let rel = resolved.strip_prefix(run).ok()?;
        (RunDir::exists(run) && RunDir::owns(rel)).then(|| (run.to_path_buf(), rel.to_path_buf()))
    })
}

/// `path` with its longest existing ancestor canonicalised (symlinks followed) and the rest
/// normalised lexically: the path may not exist yet.
fn resolve(path: &Path) -> PathBuf {
    let absolute = match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir().unwrap_or_default().join(path),
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let base = loop {
        match existing.canonicalize() {
            Ok(base) => break base,
            Err(_) => match (existing.parent(), existing.components().next_back()) {
                (Some(parent), Some(last)) => {
                    rest.push(last.as_os_str().to_os_string());
                    existing = parent;
                }
                _ => break existing.to_path_buf(),
            },
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match Path::new(part).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::CurDir) | None => {}
            Some(_) => out.push(part),
        }
    }
    out
}

/// Rule 1 for `path`.
fn refuse_run_file(path: &Path) -> Result<(), OutputError> {
    match run_file(path) {
        Some((run, rel)) => Err(OutputError::RunFile {
            path: shown(path),
            run: shown(&run),
            rel: shown(&rel),
        }),
        None => Ok(()),
    }
}

/// An output file the user named, checked before any work is done.
#[derive(Debug, Clone)]
pub struct OutputFile {
    path: PathBuf,
    overwrite: Overwrite,
}

impl OutputFile {
    /// Checks rules 1 and 2 for `path`.
    pub fn check(
        path: impl Into<PathBuf>,
        overwrite: Overwrite,
    ) -> Result<OutputFile, OutputError> {
        let path = path.into();
        refuse_run_file(&path)?;
        if path.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(OutputError::IsDir(shown(&path)));
        }
        if overwrite == Overwrite::Refuse && path.symlink_metadata().is_ok() {
            return Err(OutputError::Exists(shown(&path)));
        }
        Ok(OutputFile { path, overwrite })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` atomically, under the same rules as the check.
    pub fn write(&self, bytes: &[u8]) -> Result<(), OutputError> {
        refuse_run_file(&self.path)?;
        put(&self.path, bytes, self.overwrite)
    }
}

/// Writes atomically, replacing only when allowed.
fn put(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<(), OutputError> {
    let result = match overwrite {
        Overwrite::Replace => write_atomic(path, bytes),
        Overwrite::Refuse => write_atomic_new(path, bytes),
    };
    result.map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => OutputError::Exists(shown(path)),
        _ => OutputError::Write {
            path: shown(path),
            error,
        },
    })
}

/// Whether a folder entry is cae's own leftover rather than a file of the user's.
fn leftover(name: &str) -> bool {
    name == LOCK_FILE || is_temp_name(name, TempNames::Ours)
}

/// The names in `dir` that are not cae's leftovers, sorted; none when `dir` does not exist.
fn user_entries(dir: &Path) -> Result<Vec<String>, OutputError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(error) => {
            return Err(OutputError::Write {
                path: shown(dir),
                error,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| OutputError::Write {
            path: shown(dir),
            error,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !leftover(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Checks that `dir` may be a folder of outputs: not a file, not one of a run's own folders.
fn check_folder(dir: &Path) -> Result<(), OutputError> {
    refuse_run_file(dir)?;
    match dir.metadata() {
        Ok(meta) if !meta.is_dir() => Err(OutputError::NotDir(shown(dir))),
        _ => Ok(()),
    }
}

/// An output folder the user named (rule 3), created by [`OutputDir::prepare`]; every file goes
/// through [`OutputDir::write`].
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    overwrite: Overwrite,
    written: BTreeSet<PathBuf>,
}

impl OutputDir {
    /// Checks rules 1 and 3 for `dir`, before any work is done; the folder (with its parents)
    /// is made by the first write, so a command that fails before it leaves none.
    pub fn prepare(
        dir: impl Into<PathBuf>,
        overwrite: Overwrite,
    ) -> Result<OutputDir, OutputError> {
        let root = dir.into();
        check_folder(&root)?;
        if overwrite == Overwrite::Refuse && !user_entries(&root)?.is_empty() {
            return Err(OutputError::NotEmpty(shown(&root)));
        }
        Ok(OutputDir {
            root,
            overwrite,
            written: BTreeSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` to `rel` inside the folder (creating sub-folders) and returns its path.
    /// One command never writes the same name twice.
    pub fn write(&mut self, rel: impl AsRef<Path>, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        let path = self.root.join(rel);
        refuse_run_file(&path)?;
        if !self.written.insert(path.clone()) {
            return Err(OutputError::Twice(shown(&path)));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| OutputError::Write {
                path: shown(parent),
                error,
            })?;
        }
        put(&path, bytes, self.overwrite)?;
        Ok(path)
    }
}

/// Checks that `dir` may become a new run (rule 4), without creating it.
pub fn check_new_run(dir: &Path, overwrite: Overwrite) -> Result<(), OutputError> {
    if RunDir::exists(dir) {
        return Err(OutputError::HoldsRun(shown(dir)));
    }
    check_folder(dir)?;
    let entries = user_entries(dir)?;
    if entries.is_empty() {
        return Ok(());
    }
    if overwrite == Overwrite::Refuse {
        return Err(OutputError::NotEmpty(shown(dir)));
    }
    match entries
        .iter()
        .find(|n| ARTIFACTS.contains(&n.as_str()) || ARTIFACT_DIRS.contains(&n.as_str()))
    {
        Some(name) => Err(OutputError::WouldReplace {
            dir: shown(dir),
            name: name.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cae-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A folder that looks like a run: `config.toml` and `best.bpk`.
    fn fake_run(dir: &Path) -> PathBuf {
        let run = dir.join("run");
        fs::create_dir_all(run.join("recon")).unwrap();
        fs::write(run.join("config.toml"), b"x").unwrap();
        fs::write(run.join("best.bpk"), b"weights").unwrap();
        run
    }

    #[test]
    fn a_runs_own_files_are_refused_even_with_force() {
        let dir = scratch("runfile");
        let run = fake_run(&dir);
        for rel in [
            "best.bpk",
            "checkpoint.bin",
            "recon/epoch-001.png",
            "recon/new/x.png",
        ] {
            let e = OutputFile::check(run.join(rel), Overwrite::Replace).unwrap_err();
            assert!(matches!(e, OutputError::RunFile { .. }), "{rel}: {e}");
        }
        // Through `..` and a symlinked folder too.
        let e = OutputFile::check(run.join("recon/../best.bpk"), Overwrite::Replace).unwrap_err();
        assert!(matches!(e, OutputError::RunFile { .. }), "{e}");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&run, dir.join("link")).unwrap();
            let e = OutputFile::check(dir.join("link/best.bpk"), Overwrite::Replace).unwrap_err();
            assert!(matches!(e, OutputError::RunFile { .. }), "{e}");
        }
        // Other files inside a run are fine, and so is a folder of outputs in it.
        OutputFile::check(run.join("grid.png"), Overwrite::Refuse).unwrap();
        OutputDir::prepare(run.join("eval"), Overwrite::Refuse).unwrap();
        let e = OutputDir::prepare(run.join("recon"), Overwrite::Replace).unwrap_err();
        assert!(matches!(e, OutputError::RunFile { .. }), "{e}");
        assert_eq!(fs::read(run.join("best.bpk")).unwrap(), b"weights");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_file_is_replaced_only_when_asked() {
        let dir = scratch("exists");
        let path = dir.join("a.png");
        fs::write(&path, b"mine").unwrap();
        let e = OutputFile::check(&path, Overwrite::Refuse).unwrap_err();
        assert!(matches!(e, OutputError::Exists(_)), "{e}");
        // A file that appears after the check is not replaced either.
        let late = OutputFile::check(dir.join("b.png"), Overwrite::Refuse).unwrap();
        fs::write(dir.join("b.png"), b"mine").unwrap();
        assert!(matches!(late.write(b"new"), Err(OutputError::Exists(_))));
        assert_eq!(fs::read(dir.join("b.png")).unwrap(), b"mine");
        OutputFile::check(&path, Overwrite::Replace)
            .unwrap()
            .write(b"new")
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let e = OutputFile::check(&dir, Overwrite::Replace).unwrap_err();
        assert!(matches!(e, OutputError::IsDir(_)), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_output_folder_must_be_empty_unless_forced_and_keeps_other_files() {
        let dir = scratch("folder");
        let out = dir.join("out");
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join(".lock"), b"").unwrap();
        let mut empty = OutputDir::prepare(&out, Overwrite::Refuse).unwrap();
        empty.write("a.png", b"1").unwrap();
        assert!(matches!(
            empty.write("a.png", b"2"),
            Err(OutputError::Twice(_))
        ));
        fs::write(out.join("mine.txt"), b"mine").unwrap();
        let e = OutputDir::prepare(&out, Overwrite::Refuse).unwrap_err();
        assert!(matches!(e, OutputError::NotEmpty(_)), "{e}");
        let mut forced = OutputDir::prepare(&out, Overwrite::Replace).unwrap();
        forced.write("a.png", b"3").unwrap();
        forced.write("sub/b.png", b"4").unwrap();
        assert_eq!(fs::read(out.join("a.png")).unwrap(), b"3");
        assert_eq!(fs::read(out.join("mine.txt")).unwrap(), b"mine");
        let e = OutputDir::prepare(out.join("a.png"), Overwrite::Replace).unwrap_err();
        assert!(matches!(e, OutputError::NotDir(_)), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_run_never_replaces_a_run_or_the_users_files() {
        let dir = scratch("newrun");
        let run = fake_run(&dir);
        for overwrite in [Overwrite::Refuse, Overwrite::Replace] {
            let e = check_new_run(&run, overwrite).unwrap_err();
            assert!(matches!(e, OutputError::HoldsRun(_)), "{e}");
        }
        let mine = dir.join("mine");
        fs::create_dir_all(&mine).unwrap();
        check_new_run(&mine, Overwrite::Refuse).unwrap();
        fs::write(mine.join("notes.txt"), b"x").unwrap();
        let e = check_new_run(&mine, Overwrite::Refuse).unwrap_err();
        assert!(matches!(e, OutputError::NotEmpty(_)), "{e}");
        check_new_run(&mine, Overwrite::Replace).unwrap();
        fs::write(mine.join("metrics.csv"), b"mine").unwrap();
        let e = check_new_run(&mine, Overwrite::Replace).unwrap_err();
        assert!(e.to_string().contains("holds metrics.csv"), "{e}");
        check_new_run(&dir.join("new"), Overwrite::Refuse).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
