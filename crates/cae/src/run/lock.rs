//! The run lock: an advisory lock on `RUN/.lock`, held for as long as a process writes into the
//! run (training, resuming, fitting a threshold, importing), so that two processes never write
//! one run at once — before it, a second `--resume` swept the first one's temporary file away
//! mid-write and the first died. The lock is the kernel's (`flock` through `std::fs::File`), so
//! it ends with its process however that ends, `kill -9` included; the file stays behind and
//! means nothing then. It holds the holder's PID and what it does, which a refused process
//! names. Readers (`eval`, `export`, `serve`, ...) take no lock: every file they read is
//! replaced atomically.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file's name inside a run.
pub const LOCK_FILE: &str = ".lock";

/// How long a refused process waits for the holder to have written its PID (it writes it
/// right after taking the lock).
const HOLDER_WAIT: Duration = Duration::from_secs(1);

/// Held for the life of this value; dropping it releases the run.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

/// Why a run could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{run}: in use by another cae process ({holder}); wait for it to end or stop it")]
    Held { run: String, holder: String },
    #[error("{path}: cannot lock the run: {error}")]
    Io { path: String, error: io::Error },
}

impl RunLock {
    /// Locks the run at `run` (the folder must exist); `what` says what the holder does.
    pub fn acquire(run: &Path, what: &str) -> Result<RunLock, LockError> {
        let path = run.join(LOCK_FILE);
        let io_err = |error| LockError::Io {
            path: path.display().to_string(),
            error,
        };
        // Not truncated on open: a refused process must not erase the holder's PID.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    run: run.display().to_string(),
                    holder: holder(&mut file),
                });
            }
            // A file system without locks (some network mounts): the run goes unguarded
            // rather than unusable.
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let note = format!("{} {what}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(note.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io_err)?;
        Ok(RunLock { _file: file, path })
    }

    /// `RUN/.lock`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// "PID 1234, training", read from the lock file of the holder.
fn holder(file: &mut File) -> String {
    let started = Instant::now();
    loop {
        let mut text = String::new();
        let read = file.rewind().and_then(|()| file.read_to_string(&mut text));
        let line = text.lines().next().unwrap_or_default().trim().to_string();
        if let (Ok(_), Some((pid, what))) = (read, line.split_once(' '))
            && pid.bytes().all(|b| b.is_ascii_digit())
        {
            return format!("PID {pid}, {what}");
        }
        if started.elapsed() > HOLDER_WAIT {
            return "PID unknown".to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("cae-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = RunLock::acquire(&dir, "training").unwrap();
        let e = RunLock::acquire(&dir, "resuming").unwrap_err().to_string();
        assert!(
            e.contains(&format!("PID {}, training", std::process::id())),
            "{e}"
        );
        drop(first);
        let again = RunLock::acquire(&dir, "resuming").unwrap();
        let text = std::fs::read_to_string(again.path()).unwrap();
        assert_eq!(text, format!("{} resuming\n", std::process::id()));
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
