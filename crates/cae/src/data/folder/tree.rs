//! The walk of an image folder, and its rule for symbolic links: links are followed, wherever
//! they lead (a class folder may be a link to images stored elsewhere), but **every image is
//! read once, under the folder it really lives in**. So a link is an error, naming the link
//! and where it leads, when it would break that:
//!
//! - it leads into another immediate sub-folder of the root (`cat/to-dog -> ../dog` would
//!   file dog's images under cat, and read them twice);
//! - it leads back to a folder that holds it (a loop: `cat/again -> ..`);
//! - it reaches a folder or image already reached another way (two links to one place).
//!
//! A link that leads nowhere (dangling) is skipped, as are hidden entries. Entries are sorted,
//! so the walk and its errors are the same on every run.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::super::{DataError, io_error, show};
use super::is_image_path;

/// One walk over a folder tree.
pub(super) struct Tree {
    /// Real path of every folder and image reached so far → the path it was reached by.
    seen: HashMap<PathBuf, PathBuf>,
    /// The root's immediate sub-folders: real path and the path as listed.
    tops: Vec<(PathBuf, PathBuf)>,
}

/// A listed folder: the path it was reached by and its real path.
pub(super) struct Folder {
    pub(super) path: PathBuf,
    real: PathBuf,
}

impl Tree {
    /// Lists `root`: its own images and its immediate sub-folders (both sorted); each
    /// sub-folder is then walked on its own by [`Tree::walk`].
    pub(super) fn open(root: &Path) -> Result<(Tree, Vec<PathBuf>, Vec<Folder>), DataError> {
        let real = real_path(root)?;
        let mut tree = Tree {
            seen: HashMap::from([(real.clone(), root.to_path_buf())]),
            tops: Vec::new(),
        };
        let (files, dirs) = tree.list(root, &real, None)?;
        tree.tops = dirs
            .iter()
            .map(|d| (d.real.clone(), d.path.clone()))
            .collect();
        Ok((tree, files, dirs))
    }

    /// Every image under `top` (one of the root's sub-folders, number `index`), recursively.
    pub(super) fn walk(
        &mut self,
        top: &Folder,
        index: usize,
        out: &mut Vec<PathBuf>,
    ) -> Result<(), DataError> {
        let (files, dirs) = self.list(&top.path, &top.real, Some(index))?;
        out.extend(files);
        for dir in &dirs {
            self.walk(dir, index, out)?;
        }
        Ok(())
    }

    /// The images and sub-folders of `dir` (real path `real`), each checked against the rule.
    /// `top` is the root sub-folder being walked (`None` for the root itself).
    fn list(
        &mut self,
        dir: &Path,
        real: &Path,
        top: Option<usize>,
    ) -> Result<(Vec<PathBuf>, Vec<Folder>), DataError> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            if !entry.file_name().to_string_lossy().starts_with('.') {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.file_name());
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        for entry in entries {
            let path = entry.path();
            // fs::metadata follows links; a dangling link is skipped.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            if !(meta.is_dir() || (meta.is_file() && is_image_path(&path))) {
                continue;
            }
            let target = if is_link {
                real_path(&path)?
            } else {
                real.join(entry.file_name())
            };
            if meta.is_dir() && real.starts_with(&target) {
                return Err(link_error(
                    &path,
                    format!(
                        "a symbolic link to {}, a folder that holds it (a loop); remove the link",
                        show(&target)
                    ),
                ));
            }
            self.check_top(&path, &target, top)?;
            if let Some(first) = self.seen.insert(target.clone(), path.clone()) {
                return Err(link_error(
                    &path,
                    format!(
                        "the same {} as {} (through a symbolic link); each image is read once: \
                         remove the link",
                        if meta.is_dir() { "folder" } else { "image" },
                        show(&first)
                    ),
                ));
            }
            if meta.is_dir() {
                dirs.push(Folder { path, real: target });
            } else {
                files.push(path);
            }
        }
        Ok((files, dirs))
    }

    /// An entry under root sub-folder `top` must not lie inside another one.
    fn check_top(&self, path: &Path, target: &Path, top: Option<usize>) -> Result<(), DataError> {
        let Some(top) = top else {
            return Ok(());
        };
        let other = self
            .tops
            .iter()
            .enumerate()
            .find(|(i, (real, _))| *i != top && target.starts_with(real));
        match other {
            None => Ok(()),
            Some((_, (_, listed))) => Err(link_error(
                path,
                format!(
                    "leads into {}, another sub-folder of the data (a class of its own when \
                     sub-folders are classes); each image is read once, under the folder it \
                     lives in: remove the link or copy the images",
                    show(listed)
                ),
            )),
        }
    }
}

fn link_error(path: &Path, reason: String) -> DataError {
    DataError::Link {
        path: show(path),
        reason,
    }
}

/// The real path (links resolved); a path that cannot be resolved is an I/O error.
fn real_path(path: &Path) -> Result<PathBuf, DataError> {
    fs::canonicalize(path).map_err(|e| io_error(path, e))
}
