//! Atomic file writes: every file the toolkit saves goes to a temporary file beside its
//! destination and is renamed into place, so a crash or `kill -9` never leaves a half-written
//! file where a good one used to be. The file is fsynced before the rename and its folder
//! after it, so a power loss cannot persist the rename without the data (or lose the rename).
//!
//! Temporary files are named `.<name>.cae-tmp-<pid>` (recognisably ours, and whose) and are held
//! under an advisory lock while they are written. A process killed mid-write leaves its
//! temporary file behind, so the first atomic write of each process into a folder sweeps that
//! folder of temporary files whose writer is gone ([`remove_stale_temps`]): its PID no longer
//! runs and nobody holds the file's lock. The temporary file of a live process is never touched.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Marks a temporary file: `.<name>.cae-tmp-<pid>`.
const TEMP_MARK: &str = ".cae-tmp-";

/// The mark of versions before the `cae-` prefix: `.<name>.tmp-<pid>`. Too generic to sweep
/// from any folder; only a run directory, which cae owns, is swept of it.
const LEGACY_MARK: &str = ".tmp-";

/// Which temporary-file names a sweep recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempNames {
    /// `.<name>.cae-tmp-<pid>` only: safe in any folder.
    Ours,
    /// Also the older `.<name>.tmp-<pid>`: only for folders cae owns (run directories).
    WithLegacy,
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename, fsync of
/// the folder), replacing any file there.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write(path, bytes, false)
}

/// [`write_atomic`] that never replaces: fails with [`io::ErrorKind::AlreadyExists`] when
/// `path` exists, decided at the moment the file is put in place (a hard link, which cannot
/// overwrite), so a file that appeared while this one was computed is not lost either.
pub fn write_atomic_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write(path, bytes, true)
}

fn write(path: &Path, bytes: &[u8], no_clobber: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    sweep_once(dir);
    let tmp = dir.join(temp_name(&name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        // Tells a sweeping process that this writer is alive (PIDs alone can lie across PID
        // namespaces); file systems without locks fall back to the PID check.
        let _ = file.try_lock();
        file.write_all(bytes)?;
        file.sync_all()?;
        if no_clobber {
            place_new(&tmp, path)
        } else {
            fs::rename(&tmp, path)
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// `.<name>.cae-tmp-<pid>`.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}{TEMP_MARK}{pid}")
}

/// Puts `tmp` at `path` unless something is there: a hard link fails on an existing name, so
/// the check and the placing are one step. File systems without hard links get a check, then
/// a rename.
fn place_new(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => fs::remove_file(tmp),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if path.symlink_metadata().is_ok() => {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        }
        Err(_) => fs::rename(tmp, path),
    }
}

/// Makes a rename inside `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Folders cannot be opened for syncing on every platform; there the rename is all we do.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Sweeps `dir` of dead writers' temporary files, once per process: later writes into the
/// same folder skip the listing (a folder of 10,000 overlays is listed once, not 10,000 times).
/// Housekeeping never makes a write fail, so its errors are dropped.
fn sweep_once(dir: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let first = SWEPT.lock().map(|mut s| s.insert(key)).unwrap_or(false);
    if first {
        let _ = remove_stale_temps(dir, TempNames::Ours);
    }
}

/// The writer's PID of a temporary file name, if `name` is one.
fn temp_pid(name: &str, names: TempNames) -> Option<u32> {
    let marks: &[&str] = match names {
        TempNames::Ours => &[TEMP_MARK],
        TempNames::WithLegacy => &[TEMP_MARK, LEGACY_MARK],
    };
    if !name.starts_with('.') {
        return None;
    }
    marks.iter().find_map(|mark| {
        let (target, pid) = name.rsplit_once(mark)?;
        let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        // `.<name>` before the mark: a temporary file of some target, not a bare `.tmp-1`.
        (digits && target.len() > 1).then(|| pid.parse().ok())?
    })
}

/// Whether `name` is a temporary file name of an atomic write.
pub fn is_temp_name(name: &str, names: TempNames) -> bool {
    temp_pid(name, names).is_some()
}

/// Deletes the temporary files that killed processes left in `dir` (not in its sub-folders)
/// and returns how many. A file is only removed when its name marks it as a temporary file
/// (`names`), its PID is not this process, no process of that PID runs, and its lock is free;
/// a live writer's file is never touched.
pub fn remove_stale_temps(dir: &Path, names: TempNames) -> io::Result<usize> {
    let own = std::process::id();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = temp_pid(&name.to_string_lossy(), names) else {
            continue;
        };
        if pid == own || process_alive(pid) || !entry.file_type()?.is_file() {
            continue;
        }
        let Ok(file) = fs::File::open(entry.path()) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) | Err(fs::TryLockError::Error(_)) => {}
            // Held: the PID was reused, or the writer runs in another PID namespace.
            Err(fs::TryLockError::WouldBlock) => continue,
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            // Another sweeper was first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Whether a process with this PID runs (a zombie counts: it is not reaped yet).
#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a portable check every writer counts as alive: nothing is swept.
#[cfg(not(unix))]
pub fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cae-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut left: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        left
    }

    /// A PID no process has: past Linux's largest pid_max.
    const DEAD: u32 = 4_194_400;

    #[test]
    fn replaces_existing_file_and_leaves_no_temp() {
        let dir = scratch("replace");
        let path = dir.join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_new_never_replaces() {
        let dir = scratch("new");
        let path = dir.join("a.txt");
        write_atomic_new(&path, b"one").unwrap();
        let e = write_atomic_new(&path, b"two").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(names(&dir), ["a.txt"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_recognised() {
        assert_eq!(temp_pid(".a.bin.cae-tmp-12", TempNames::Ours), Some(12));
        assert_eq!(temp_pid(".a.bin.tmp-12", TempNames::Ours), None);
        assert_eq!(temp_pid(".a.bin.tmp-12", TempNames::WithLegacy), Some(12));
        assert_eq!(temp_pid(".tmp-12", TempNames::WithLegacy), None);
        assert_eq!(temp_pid("a.bin.cae-tmp-12", TempNames::Ours), None);
        assert_eq!(temp_pid(".a.cae-tmp-x1", TempNames::Ours), None);
    }

    #[test]
    fn removes_only_dead_writers_temps() {
        let dir = scratch("stale");
        let own = temp_name("a.bin", std::process::id());
        // PID 1 always runs: its file must stay.
        let live = temp_name("b.bin", 1);
        let dead = temp_name("c.bin", DEAD);
        let legacy = format!(".d.bin.tmp-{DEAD}");
        for name in [&own, &live, &dead, &legacy, "a.bin", ".tmp-9"] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(&dir, TempNames::Ours).unwrap(), 1);
        assert!(!dir.join(&dead).exists() && dir.join(&legacy).exists());
        assert_eq!(remove_stale_temps(&dir, TempNames::WithLegacy).unwrap(), 1);
        let mut want = vec![own, live, ".tmp-9".to_string(), "a.bin".to_string()];
        want.sort();
        assert_eq!(names(&dir), want);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_locked_temp_file_is_kept_even_when_its_pid_is_dead() {
        let dir = scratch("locked");
        let path = dir.join(temp_name("a.bin", DEAD));
        let held = fs::File::create(&path).unwrap();
        held.lock().unwrap();
        assert_eq!(remove_stale_temps(&dir, TempNames::Ours).unwrap(), 0);
        drop(held);
        assert_eq!(remove_stale_temps(&dir, TempNames::Ours).unwrap(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_first_write_into_a_folder_sweeps_it() {
        let dir = scratch("sweep");
        let stale = dir.join(temp_name("model.safetensors", DEAD));
        fs::write(&stale, b"half").unwrap();
        write_atomic(&dir.join("other.png"), b"png").unwrap();
        assert!(!stale.exists());
        assert_eq!(names(&dir), ["other.png"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn processes_alive() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(DEAD));
    }
}
