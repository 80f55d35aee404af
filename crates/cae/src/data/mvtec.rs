//! The MVTec AD folder layout, the de-facto standard for image anomaly detection data:
//!
//! ```text
//! ROOT/train/good/*.png                     defect-free training images
//! ROOT/test/good/*.png                      defect-free test images
//! ROOT/test/<defect>/<name>.png             defective test images, one folder per defect type
//! ROOT/ground_truth/<defect>/<name>_mask.png  their masks (white = defect), same size
//! ```
//!
//! As a plain data source (`cae train --data ROOT`) the root means its training images;
//! [`load_test`] reads the test split with a mask per image (all zero for `good`). The layout is
//! validated loudly: a missing `test/` folder, no test images, a missing mask or a mask whose
//! size differs from its image is an error naming the file and what would fix it.

use std::fs;
use std::path::{Path, PathBuf};

use super::{DataError, ImageSet, LoadOptions, folder, show, transform};

/// Name of the defect-free class folder.
pub const GOOD: &str = "good";

/// Where the layout is described, for messages.
const LAYOUT: &str = "an MVTec AD folder holds train/good/, test/good/, test/<defect>/ and \
                      ground_truth/<defect>/<name>_mask.png";

/// Why an MVTec AD folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MvtecError {
    /// A file could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// `ROOT/test` does not exist.
    #[error("{root}: has no test/ folder; {LAYOUT}")]
    MissingTest { root: String },
    /// `ROOT/test` holds no image.
    #[error(
        "{root}/test: holds no images; put defect-free images in test/good/ and defective ones in test/<defect>/"
    )]
    NoTestImages { root: String },
    /// A defective test image has no mask.
    #[error(
        "{image}: its ground-truth mask {mask} does not exist; every image in test/<defect>/ needs ground_truth/<defect>/<name>_mask.png"
    )]
    MaskMissing { image: String, mask: String },
    /// A mask's size differs from its image's.
    #[error(
        "{mask}: mask is {mask_height}x{mask_width} (HxW) but its image {image} is {height}x{width}; a mask must have its image's size"
    )]
    MaskSize {
        mask: String,
        mask_width: usize,
        mask_height: usize,
        image: String,
        width: usize,
        height: usize,
    },
}

/// The test split of an MVTec AD folder.
#[derive(Debug, Clone)]
pub struct MvtecTest {
    /// Test images; label 0 is `good`, then one label per defect folder in name order
    /// (`class_names` holds the names).
    pub images: ImageSet,
    /// One mask per image, `height * width`, 1 = defect (all zero for `good`).
    pub masks: Vec<Vec<u8>>,
}

/// True when `root` holds `train/good/`: the MVTec AD layout.
pub fn is_layout(root: &Path) -> bool {
    root.join("train").join(GOOD).is_dir()
}

/// The training images (`ROOT/train/good`); options apply as for any folder.
pub(super) fn load_train(root: &Path, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    folder::load(&root.join("train").join(GOOD), opts)
}

/// Sorted sub-folders of `dir`, hidden ones skipped.
fn subfolders(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| super::io_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| super::io_error(dir, e))?;
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with('.') && path.is_dir() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The mask path of a defective image: `ROOT/ground_truth/<defect>/<stem>_mask.png`.
fn mask_path(root: &Path, defect: &str, image: &Path) -> PathBuf {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    root.join("ground_truth")
        .join(defect)
        .join(format!("{stem}_mask.png"))
}

/// Reads `ROOT/test` with masks. `channels`, `resize` and `normalize` apply (masks are resized
/// with the images and re-binarised at 0.5); `classes` and `limit` do not.
pub fn load_test(root: &Path, opts: &LoadOptions) -> Result<MvtecTest, MvtecError> {
    let test = root.join("test");
    if !test.is_dir() {
        return Err(MvtecError::MissingTest { root: show(root) });
    }
    let mut folders = subfolders(&test)?;
    // `good` first (label 0), defects after it in name order.
    folders.sort_by_key(|p| p.file_name().is_none_or(|n| n != GOOD));
    let native = LoadOptions {
        channels: opts.channels,
        seed: opts.seed,
        ..LoadOptions::default()
    };
    let mut parts: Vec<(ImageSet, Vec<Vec<u8>>)> = Vec::new();
    let mut names = Vec::new();
    for dir in &folders {
        let set = match folder::load(dir, &native) {
            Ok(set) => set,
            Err(DataError::NoImages { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let plane = set.shape.height * set.shape.width;
        let masks = if name == GOOD {
            vec![vec![0u8; plane]; set.len()]
        } else {
            set.origins
                .iter()
                .map(|origin| read_mask(root, &name, Path::new(origin), &set))
                .collect::<Result<_, _>>()?
        };
        if let Some((first, _)) = parts.first()
            && first.shape != set.shape
            && opts.resize.is_none()
        {
            return Err(DataError::SizeMismatch {
                path: set.origins[0].clone(),
                width: set.shape.width as u32,
                height: set.shape.height as u32,
                first: first.origins[0].clone(),
                first_width: first.shape.width as u32,
                first_height: first.shape.height as u32,
            }
            .into());
        }
        let (mut set, masks) = match opts.resize {
            Some((h, w)) => resize_with_masks(set, masks, h, w)?,
            None => (set, masks),
        };
        if let Some(n) = opts.normalize {
            let len = set.shape.len().max(1);
            set.pixels.chunks_mut(len).for_each(|image| n.apply(image));
        }
        let label = names.len() as u32;
        names.push(name);
        parts.push((
            ImageSet {
                labels: Some(vec![label; set.len()]),
                ..set
            },
            masks,
        ));
    }
    if parts.is_empty() {
        return Err(MvtecError::NoTestImages { root: show(root) });
    }
    let mut images = parts[0].0.select(&[]);
    let mut masks = Vec::new();
    let mut labels = Vec::new();
    for (set, m) in parts {
        images.pixels.extend_from_slice(&set.pixels);
        images.origins.extend(set.origins);
        labels.extend(set.labels.unwrap_or_default());
        masks.extend(m);
    }
    images.labels = Some(labels);
    images.class_names = Some(names);
    Ok(MvtecTest { images, masks })
}

/// Loads, checks and binarises the mask of one defective image.
fn read_mask(
    root: &Path,
    defect: &str,
    image: &Path,
    set: &ImageSet,
) -> Result<Vec<u8>, MvtecError> {
    let path = mask_path(root, defect, image);
    if !path.is_file() {
        return Err(MvtecError::MaskMissing {
            image: show(image),
            mask: show(&path),
        });
    }
    let gray = LoadOptions {
        channels: Some(1),
        ..LoadOptions::default()
    };
    let mask = folder::load_file(&path, &gray)?;
    let mask = transform::convert_channels(mask, 1)?;
    if (mask.shape.height, mask.shape.width) != (set.shape.height, set.shape.width) {
        return Err(MvtecError::MaskSize {
            mask: show(&path),
            mask_width: mask.shape.width,
            mask_height: mask.shape.height,
            image: show(image),
            width: set.shape.width,
            height: set.shape.height,
        });
    }
    Ok(mask.pixels.iter().map(|&v| u8::from(v > 0.5)).collect())
}

/// Resizes images and their masks alike; masks are re-binarised at 0.5.
fn resize_with_masks(
    set: ImageSet,
    masks: Vec<Vec<u8>>,
    h: usize,
    w: usize,
) -> Result<(ImageSet, Vec<Vec<u8>>), DataError> {
    let mut shape = set.shape;
    shape.channels = 1;
    let as_set = ImageSet {
        shape,
        pixels: masks.iter().flatten().map(|&m| f32::from(m)).collect(),
        labels: None,
        class_names: None,
        origins: set.origins.clone(),
    };
    let resized = transform::resize(as_set, h, w)?;
    let masks = resized
        .pixels
        .chunks_exact(h * w)
        .map(|c| c.iter().map(|&v| u8::from(v >= 0.5)).collect())
        .collect();
    Ok((transform::resize(set, h, w)?, masks))
}

#[cfg(test)]
mod tests;
