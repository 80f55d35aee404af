//! Folders of images (PNG, JPEG, BMP), searched recursively, and single image files.
//!
//! Owns the folder walk (sorted, hidden entries skipped, symlink loops avoided), class
//! detection from immediate sub-folders, a header-only first pass that checks every size
//! before any pixel is decoded, gray-or-colour detection, and decoding into planar f32.
//! Class filtering and the limit are applied to the file list, so only kept images are decoded.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader};

use super::error::one_line;
use super::transform::{LUMA, resize_image_into};
use super::{DataError, ImageSet, ImageShape, LoadOptions, alloc_pixels, io_error, show};

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// True when the path has an image extension this loader decodes.
pub(super) fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Loads every image under `root`. When `root` holds no images itself but its immediate
/// sub-folders do, each such sub-folder is a class (labels in name order).
pub(super) fn load(root: &Path, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    let mut visited = HashSet::new();
    let (direct, subdirs) = list_dir(root, &mut visited)?;
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    let mut class_names = None;
    let mut per_class = Vec::new();
    for dir in &subdirs {
        let mut found = Vec::new();
        walk(dir, &mut found, &mut visited)?;
        found.sort();
        per_class.push((dir, found));
    }
    if direct.is_empty() && per_class.iter().any(|(_, f)| !f.is_empty()) {
        let mut names = Vec::new();
        for (dir, found) in per_class.into_iter().filter(|(_, f)| !f.is_empty()) {
            let label = names.len() as u32;
            names.push(
                dir.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            );
            files.extend(found.into_iter().map(|f| (f, label)));
        }
        class_names = Some(names);
    } else {
        let mut all = direct;
        all.extend(per_class.into_iter().flat_map(|(_, f)| f));
        all.sort();
        files.extend(all.into_iter().map(|f| (f, 0)));
    }
    if files.is_empty() {
        return Err(DataError::NoImages { path: show(root) });
    }
    let labelled = class_names.is_some();
    if let Some(classes) = &opts.classes {
        if !labelled {
            return Err(DataError::NoLabels {
                classes: classes.clone(),
                origin: show(root),
            });
        }
        let available: Vec<u32> = (0..class_names.as_ref().map_or(0, Vec::len) as u32).collect();
        files.retain(|(_, l)| classes.contains(l));
        if files.is_empty() {
            return Err(DataError::NoneSelected {
                classes: classes.clone(),
                available,
            });
        }
    }
    if let Some(n) = opts.limit {
        files.truncate(n);
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let (shape, pixels) = decode_all(&paths, opts)?;
    Ok(ImageSet {
        shape,
        pixels,
        labels: labelled.then(|| files.iter().map(|(_, l)| *l).collect()),
        class_names,
        origins: paths.iter().map(|p| show(p)).collect(),
    })
}

/// Loads a single image file as a one-image set.
pub(super) fn load_file(path: &Path, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    let paths = [path.to_path_buf()];
    let (shape, pixels) = decode_all(&paths, opts)?;
    Ok(ImageSet {
        shape,
        pixels,
        labels: None,
        class_names: None,
        origins: vec![show(path)],
    })
}

/// Image files directly in `dir` and its sub-folders (both sorted, hidden entries skipped).
fn list_dir(
    dir: &Path,
    visited: &mut HashSet<PathBuf>,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DataError> {
    if let Ok(canon) = fs::canonicalize(dir) {
        visited.insert(canon);
    }
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // fs::metadata follows symlinks; a dangling link is skipped.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            dirs.push(path);
        } else if meta.is_file() && is_image_path(&path) {
            files.push(path);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// Collects image files under `dir` recursively, never entering a folder twice.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
) -> Result<(), DataError> {
    if let Ok(canon) = fs::canonicalize(dir)
        && visited.contains(&canon)
    {
        return Ok(());
    }
    let (files, dirs) = list_dir(dir, visited)?;
    out.extend(files);
    for d in dirs {
        walk(&d, out, visited)?;
    }
    Ok(())
}

fn format_name(path: &Path) -> String {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "PNG".to_string(),
        Some("jpg" | "jpeg") => "JPEG".to_string(),
        Some("bmp") => "BMP".to_string(),
        Some(other) => other.to_ascii_uppercase(),
        None => "image".to_string(),
    }
}

fn image_error(path: &Path, e: image::ImageError) -> DataError {
    match e {
        image::ImageError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            io_error(path, io)
        }
        other => DataError::Image {
            path: show(path),
            format: format_name(path),
            message: one_line(other),
        },
    }
}

fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<fs::File>>, DataError> {
    ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .map_err(|e| io_error(path, e))
}

/// Header pass (sizes only, nothing decoded) then decode pass; returns the common shape and
/// all pixels. Without a forced channel count, images are kept as one plane while every image
/// so far is gray (by colour type or by content: R = G = B everywhere, which also catches
/// gray palette PNG/BMP files); the first colour image switches the whole set to RGB.
fn decode_all(paths: &[PathBuf], opts: &LoadOptions) -> Result<(ImageShape, Vec<f32>), DataError> {
    let root = paths.first().map_or_else(String::new, |p| show(p));
    let mut first: Option<(u32, u32)> = None;
    for path in paths {
        let decoder = reader(path)?
            .into_decoder()
            .map_err(|e| image_error(path, e))?;
        let (w, h) = decoder.dimensions();
        match first {
            None => first = Some((w, h)),
            Some((fw, fh)) if opts.resize.is_none() && (fw, fh) != (w, h) => {
                return Err(mismatch(path, (w, h), &root, (fw, fh)));
            }
            Some(_) => {}
        }
    }
    let (fw, fh) = first.unwrap_or((0, 0));
    let (height, width) = opts.resize.unwrap_or((fh as usize, fw as usize));
    let plane = height * width;
    let mut channels = opts.channels.unwrap_or(1);
    let mut pixels = alloc_pixels(paths.len().checked_mul(channels * plane), &root)?;
    for (i, path) in paths.iter().enumerate() {
        let img = reader(path)?.decode().map_err(|e| image_error(path, e))?;
        let planar = match opts.channels {
            Some(c) => to_planar(&img, c),
            None if channels == 1 => match gray_plane(&img) {
                Some(g) => g,
                None => {
                    // First colour image: earlier gray images become RGB.
                    let mut rgb = alloc_pixels(paths.len().checked_mul(3 * plane), &root)?;
                    for done in pixels.chunks_exact(plane.max(1)).take(i) {
                        for _ in 0..3 {
                            rgb.extend_from_slice(done);
                        }
                    }
                    pixels = rgb;
                    channels = 3;
                    to_planar(&img, 3)
                }
            },
            None => to_planar(&img, 3),
        };
        let native = ImageShape {
            channels,
            height: img.height() as usize,
            width: img.width() as usize,
        };
        if (native.height, native.width) == (height, width) {
            pixels.extend_from_slice(&planar);
        } else if opts.resize.is_some() {
            resize_image_into(&planar, native, height, width, &mut pixels, &show(path))?;
        } else {
            return Err(mismatch(path, (img.width(), img.height()), &root, (fw, fh)));
        }
    }
    let shape = ImageShape {
        channels,
        height,
        width,
    };
    Ok((shape, pixels))
}

fn mismatch(
    path: &Path,
    (width, height): (u32, u32),
    first: &str,
    (fw, fh): (u32, u32),
) -> DataError {
    DataError::SizeMismatch {
        path: show(path),
        width,
        height,
        first: first.to_string(),
        first_width: fw,
        first_height: fh,
    }
}

/// The single plane of a gray image (by colour type, or RGB with R = G = B), else None.
pub(super) fn gray_plane(img: &DynamicImage) -> Option<Vec<f32>> {
    if !img.color().has_color() {
        return Some(img.to_luma32f().into_raw());
    }
    let rgb = img.to_rgb32f();
    let raw = rgb.as_raw();
    raw.chunks_exact(3)
        .all(|p| p[0] == p[1] && p[1] == p[2])
        .then(|| raw.chunks_exact(3).map(|p| p[0].clamp(0.0, 1.0)).collect())
}

/// Planar f32 in [0, 1] with 1 (luminance) or 3 (RGB) channels; alpha is dropped.
pub(super) fn to_planar(img: &DynamicImage, channels: usize) -> Vec<f32> {
    if channels == 1 && !img.color().has_color() {
        return img.to_luma32f().into_raw();
    }
    let rgb = img.to_rgb32f();
    let plane = rgb.width() as usize * rgb.height() as usize;
    let raw = rgb.as_raw();
    if channels == 1 {
        raw.chunks_exact(3)
            .map(|p| (LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2]).clamp(0.0, 1.0))
            .collect()
    } else {
        let mut out = vec![0.0f32; 3 * plane];
        for (i, p) in raw.chunks_exact(3).enumerate() {
            out[i] = p[0].clamp(0.0, 1.0);
            out[plane + i] = p[1].clamp(0.0, 1.0);
            out[2 * plane + i] = p[2].clamp(0.0, 1.0);
        }
        out
    }
}

#[cfg(test)]
mod tests;
