//! Atomic file writes: every artifact the toolkit saves goes to a temporary file beside its
//! destination and is renamed into place, so a crash or `kill -9` never leaves a half-written
//! file where a good one used to be. The file is fsynced before the rename and its folder
//! after it, so a power loss cannot persist the rename without the data (or lose the rename).
//! A process killed mid-write leaves its temporary file behind; [`remove_stale_temps`] clears
//! those when a run is resumed.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Marks a temporary file: `.<name>.tmp-<pid>`.
const TEMP_MARK: &str = ".tmp-";

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename, fsync of
/// the folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}{TEMP_MARK}{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
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

/// Deletes the temporary files that processes killed mid-write left in `dir` (not in its
/// sub-folders); returns how many. Only names of the form `.<name>.tmp-<pid>` with a pid other
/// than this process's are touched.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let own = std::process::id().to_string();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = name.starts_with('.')
            && name.rsplit_once(TEMP_MARK).is_some_and(|(_, pid)| {
                !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && pid != own
            });
        if stale && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_existing_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("cae-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removes_only_other_processes_temps() {
        let dir = std::env::temp_dir().join(format!("cae-atomic-stale-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let own = format!(".a.bin{TEMP_MARK}{}", std::process::id());
        for name in [
            ".a.bin.tmp-123",
            ".b.png.tmp-9",
            own.as_str(),
            "a.bin",
            ".tmp-x",
        ] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(&dir).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [own, ".tmp-x".to_string(), "a.bin".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
