//! Image folders read while training runs instead of decoded up front (`cae train --stream`):
//! a [`FileSet`] is the sorted file list, its labels and the images' shape, read from the
//! headers; the images a batch needs are decoded when it is assembled, on a few worker
//! threads. An [`ImageSet`] holds 4 bytes per pixel value of every image; a `FileSet` holds
//! its paths, so memory stays a few batches however large the folder is.
//!
//! A `FileSet` decodes exactly as the folder loader does (same channel rule, resize and
//! normalisation), so a streamed run trains on the same values as one that loaded the folder
//! into memory. The channel count is settled when the set is opened: forced by `--channels`,
//! else 1 when every image is gray (by its header, or decoded once to check R = G = B), else 3.

use super::cache::{CacheUse, DecodeCache};
use super::folder;
use super::mvtec;
use super::{DataError, Fingerprint, ImageSet, ImageShape, LoadOptions, io_error, labels_at, show};
use crate::data::fingerprint::FingerprintBuilder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An image folder read file by file.
#[derive(Debug, Clone)]
pub struct FileSet {
    /// Shape of every image as decoded (after `--channels` and `--resize`).
    pub shape: ImageShape,
    files: Vec<PathBuf>,
    /// One label per image when the folder's sub-folders are classes.
    pub labels: Option<Vec<u32>>,
    /// Label `i` → class-folder name, when the folder has classes.
    pub class_names: Option<Vec<String>>,
    /// How each file is decoded: the set's channel rule, resize and normalisation.
    decode: LoadOptions,
    /// Decoded images kept between reads (`--cache-mb`), shared with the sets selected from
    /// this one.
    cache: Option<Arc<DecodeCache>>,
}

/// Images decoded per fingerprint step when a set is opened.
const FINGERPRINT_CHUNK: usize = 64;

impl FileSet {
    /// Lists the folder `source` names (an MVTec layout's `train/good`), keeping what `opts`
    /// selects (classes, limit, shard); reads every header, so a size mismatch without
    /// `--resize` is an error here, before training starts. With `skip_bad` (`--skip-bad`), a
    /// file whose header cannot be read stays in the list (so partitions and order stay those
    /// of the run) for the reader to leave out.
    pub fn open(source: &str, opts: &LoadOptions, skip_bad: bool) -> Result<FileSet, DataError> {
        opts.check()?;
        let not_streamable = |kind| DataError::NotStreamable {
            origin: source.to_string(),
            kind,
        };
        if source.starts_with("builtin:") {
            return Err(not_streamable("a builtin data set"));
        }
        let path = Path::new(source);
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::NotFound {
                path: source.to_string(),
            },
            _ => io_error(path, e),
        })?;
        if !meta.is_dir() {
            return Err(not_streamable("a file (IDX, .npy, CIFAR or one image)"));
        }
        if super::cifar::folder_batches(path)?.is_some() {
            return Err(not_streamable("a CIFAR folder"));
        }
        let root = if mvtec::is_layout(path) {
            path.join("train").join(mvtec::GOOD)
        } else {
            path.to_path_buf()
        };
        let listing = folder::list(&root, opts)?;
        // The header of each file, or with `skip_bad` `None` for one that cannot be read.
        let header = |file: &PathBuf| match folder::header_size(file) {
            Err(_) if skip_bad => Ok(None),
            other => other.map(Some),
        };
        let mut sized = listing.files.iter().filter_map(|f| match header(f) {
            Ok(None) => None,
            other => Some(other.map(|size| (f, size.unwrap_or_default()))),
        });
        let (first_file, first) = match sized.next() {
            Some(first) => first?,
            // Every header unreadable (only with skip_bad): say what the first one is.
            None => return Err(folder::header_size(&listing.files[0]).unwrap_err()),
        };
        if opts.resize.is_none() {
            for next in sized {
                let (file, (h, w)) = next?;
                if (h, w) != first {
                    return Err(folder::mismatch(
                        &show(file),
                        (w as u32, h as u32),
                        &show(first_file),
                        (first.1 as u32, first.0 as u32),
                    ));
                }
            }
        }
        let channels = match opts.channels {
            Some(c) => c,
            None => {
                let mut channels = 1;
                for file in &listing.files {
                    match folder::is_gray(file) {
                        Ok(true) => {}
                        Ok(false) => {
                            channels = 3;
                            break;
                        }
                        Err(_) if skip_bad => {}
                        Err(e) => return Err(e),
                    }
                }
                channels
            }
        };
        let (height, width) = opts.resize.unwrap_or(first);
        Ok(FileSet {
            shape: ImageShape {
                channels,
                height,
                width,
            },
            files: listing.files,
            labels: listing.labels,
            class_names: listing.class_names,
            decode: LoadOptions {
                // A gray set decodes each image by the folder loader's own gray rule; a colour
                // one forces RGB, as the loader does once it has seen a colour image.
                channels: opts.channels.or((channels == 3).then_some(3)),
                resize: opts.resize,
                normalize: opts.normalize,
                ..LoadOptions::default()
            },
            cache: None,
        })
    }

    /// This set, keeping up to `mb` MiB of decoded images between reads (`--cache-mb`); the
    /// values read stay exactly those of a fresh decode ([`super::cache`]).
    pub fn with_cache(mut self, mb: u64) -> FileSet {
        self.cache = (mb > 0).then(|| Arc::new(DecodeCache::new(mb)));
        self
    }

    /// How full the cache is, when the set has one.
    pub fn cache_usage(&self) -> Option<CacheUse> {
        self.cache.as_deref().map(DecodeCache::usage)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The file of image `i`, as shown in messages.
    pub fn origin(&self, i: usize) -> String {
        show(&self.files[i])
    }

    /// A set of the images at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is `>= self.len()` (like slice indexing).
    pub fn select(&self, indices: &[usize]) -> FileSet {
        FileSet {
            shape: self.shape,
            files: indices.iter().map(|&i| self.files[i].clone()).collect(),
            labels: labels_at(self.labels.as_deref(), indices),
            class_names: self.class_names.clone(),
            decode: self.decode.clone(),
            cache: self.cache.clone(),
        }
    }

    /// One image decoded, checked against the set's shape.
    fn decode_one(&self, i: usize) -> Result<Vec<f32>, DataError> {
        let file = &self.files[i];
        let stored = match self.cache.as_deref().and_then(|c| c.get(file)) {
            Some(image) => image,
            None => {
                let image = Arc::new(folder::decode_stored(file)?);
                if let Some(cache) = &self.cache {
                    cache.offer(file, &image);
                }
                image
            }
        };
        let (shape, mut pixels) = folder::planes_of(&stored, &self.decode, &show(file))?;
        if shape != self.shape {
            return Err(DataError::Changed {
                path: show(file),
                now: shape,
                shape: self.shape,
            });
        }
        if let Some(n) = self.decode.normalize {
            n.apply(&mut pixels);
        }
        Ok(pixels)
    }

    /// The images at `indices` decoded into memory, in that order, on up to `workers` threads;
    /// the first file that cannot be read or no longer fits the set is the error.
    pub fn read(&self, indices: &[usize], workers: usize) -> Result<ImageSet, DataError> {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.len());
        for image in self.decode_many(indices, workers) {
            pixels.extend(image?);
        }
        Ok(self.set_of(indices, pixels))
    }

    /// [`FileSet::read`] that leaves out the files that cannot be read or no longer fit the
    /// set (`cae train --skip-bad`): the images that could be decoded, in order, and the
    /// error of each one left out.
    pub fn read_skipping(&self, indices: &[usize], workers: usize) -> (ImageSet, Vec<DataError>) {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.len());
        let mut kept = Vec::with_capacity(indices.len());
        let mut bad = Vec::new();
        for (&i, image) in indices.iter().zip(self.decode_many(indices, workers)) {
            match image {
                Ok(image) => {
                    pixels.extend(image);
                    kept.push(i);
                }
                Err(e) => bad.push(e),
            }
        }
        (self.set_of(&kept, pixels), bad)
    }

    /// Each image at `indices` decoded (or its error), in order, on up to `workers` threads.
    fn decode_many(&self, indices: &[usize], workers: usize) -> Vec<Result<Vec<f32>, DataError>> {
        let workers = workers.clamp(1, indices.len().max(1));
        let per = indices.len().div_ceil(workers).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = indices
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|&i| self.decode_one(i))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// The in-memory set of the images at `indices`, whose decoded values are `pixels`.
    fn set_of(&self, indices: &[usize], pixels: Vec<f32>) -> ImageSet {
        ImageSet {
            shape: self.shape,
            pixels,
            labels: labels_at(self.labels.as_deref(), indices),
            class_names: self.class_names.clone(),
            origins: indices.iter().map(|&i| self.origin(i)).collect(),
        }
    }

    /// Every image decoded into memory (for the validation images of a streamed run).
    pub fn load(&self, workers: usize) -> Result<ImageSet, DataError> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.read(&all, workers)
    }

    /// The fingerprint [`Fingerprint::of`] gives the loaded set, a chunk at a time; with
    /// `skip_bad`, of the files that can be read.
    pub fn fingerprint(&self, workers: usize, skip_bad: bool) -> Result<Fingerprint, DataError> {
        let mut builder = FingerprintBuilder::default();
        let all: Vec<usize> = (0..self.len()).collect();
        for chunk in all.chunks(FINGERPRINT_CHUNK) {
            let set = if skip_bad {
                self.read_skipping(chunk, workers).0
            } else {
                self.read(chunk, workers)?
            };
            builder.pixels(&set.pixels, set.len());
        }
        Ok(builder.finish(self.shape, self.labels.as_deref()))
    }
}

/// Decode workers for streamed sets: one per core.
pub fn decode_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixture::TempDir;
    use crate::data::{Normalize, load};
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn gray(tmp: &TempDir, rel: &str, w: u32, h: u32, v: u8) {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        GrayImage::from_fn(w, h, |x, y| Luma([v.wrapping_add((x * 7 + y * 3) as u8)]))
            .save(&p)
            .unwrap();
    }

    fn rgb(tmp: &TempDir, rel: &str, w: u32, h: u32, v: u8) {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([v.wrapping_add(x as u8), v, v.wrapping_add(y as u8 * 5)])
        })
        .save(&p)
        .unwrap();
    }

    /// Reads every image of `source` both ways and asserts the same set, bit for bit.
    fn same_as_loaded(source: &str, opts: &LoadOptions) -> FileSet {
        let files = FileSet::open(source, opts, false).unwrap_or_else(|e| panic!("{e}"));
        let loaded = load(source, opts).unwrap_or_else(|e| panic!("{e}"));
        let read = files.load(2).unwrap();
        assert_eq!(read.shape, loaded.shape);
        assert_eq!(read.pixels, loaded.pixels);
        assert_eq!(read.labels, loaded.labels);
        assert_eq!(read.class_names, loaded.class_names);
        assert_eq!(read.origins, loaded.origins);
        assert_eq!(
            files.fingerprint(2, false).unwrap(),
            Fingerprint::of(&loaded)
        );
        files
    }

    #[test]
    fn a_streamed_folder_reads_what_the_folder_loader_loads() {
        let tmp = TempDir::new("files-same");
        for i in 0..5u8 {
            gray(&tmp, &format!("good/g{i}.png"), 6, 4, 20 * i);
        }
        rgb(&tmp, "bad/c0.png", 6, 4, 40);
        // Gray by content: a colour PNG whose channels are equal.
        RgbImage::from_fn(6, 4, |x, _| Rgb([x as u8 * 9; 3]))
            .save(tmp.path().join("good/equal.png"))
            .unwrap();
        let root = tmp.s("");
        // Classes, a colour image (the set becomes RGB), resize, normalisation, a limit.
        let files = same_as_loaded(&root, &LoadOptions::default());
        assert_eq!(files.shape.channels, 3);
        let gray_only = same_as_loaded(&tmp.s("good"), &LoadOptions::default());
        assert_eq!(gray_only.shape.channels, 1);
        let options = LoadOptions {
            resize: Some((5, 3)),
            normalize: Some(Normalize::Median),
            channels: Some(1),
            classes: Some(vec![1]),
            limit: Some(4),
            ..LoadOptions::default()
        };
        let picked = same_as_loaded(&root, &options);
        assert_eq!(picked.len(), 4);
        // A subset reads the images it names, in its order.
        let subset = files.select(&[3, 0]);
        let all = files.load(1).unwrap();
        let two = subset.read(&[0, 1], 2).unwrap();
        assert_eq!(two.image(0), all.image(3));
        assert_eq!(two.image(1), all.image(0));
    }

    #[test]
    fn an_mvtec_layout_streams_its_good_training_images() {
        let tmp = TempDir::new("files-mvtec");
        for i in 0..3u8 {
            gray(&tmp, &format!("train/good/{i}.png"), 4, 4, 30 * i);
        }
        gray(&tmp, "test/good/0.png", 4, 4, 1);
        let files = same_as_loaded(&tmp.s(""), &LoadOptions::default());
        assert_eq!(files.len(), 3);
    }

    #[test]
    fn containers_sizes_and_files_that_change_are_clear_errors() {
        let tmp = TempDir::new("files-errors");
        let err = FileSet::open("builtin:shapes", &LoadOptions::default(), false).unwrap_err();
        assert!(
            err.to_string().contains("--stream reads image folders"),
            "{err}"
        );
        gray(&tmp, "one.png", 4, 4, 0);
        let err = FileSet::open(&tmp.s("one.png"), &LoadOptions::default(), false).unwrap_err();
        assert!(err.to_string().contains("a file (IDX"), "{err}");
        gray(&tmp, "two.png", 5, 4, 0);
        let err = FileSet::open(&tmp.s(""), &LoadOptions::default(), false).unwrap_err();
        assert!(
            err.to_string().contains("all images must share one size"),
            "{err}"
        );
        std::fs::remove_file(tmp.path().join("two.png")).unwrap();
        gray(&tmp, "three.png", 4, 4, 9);
        let files = FileSet::open(&tmp.s(""), &LoadOptions::default(), false).unwrap();
        // Replaced by an image of another size, then removed, while the set is open.
        gray(&tmp, "three.png", 8, 4, 9);
        let err = files.read(&[0, 1], 2).unwrap_err();
        assert!(
            err.to_string().contains("three.png: now decodes to 1x4x8"),
            "{err}"
        );
        std::fs::remove_file(tmp.path().join("three.png")).unwrap();
        let err = files.read(&[1], 1).unwrap_err();
        assert!(err.to_string().contains("three.png"), "{err}");
        assert!(files.read(&[0], 1).is_ok());
    }

    #[test]
    fn read_skipping_leaves_out_deleted_and_corrupt_files_and_names_them() {
        let tmp = TempDir::new("files-skip");
        for i in 0..6 {
            gray(&tmp, &format!("f{i}.png"), 8, 8, 10 * i as u8);
        }
        let files = FileSet::open(&tmp.s(""), &LoadOptions::default(), false).unwrap();
        let whole = files.read(&[0, 1, 2, 3, 4, 5], 2).unwrap();
        std::fs::remove_file(tmp.path().join("f1.png")).unwrap();
        std::fs::write(tmp.path().join("f4.png"), b"garbage").unwrap();
        assert!(files.read(&[0, 1, 2], 2).is_err());
        let (kept, bad) = files.read_skipping(&[0, 1, 2, 3, 4, 5], 2);
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.pixels, whole.select(&[0, 2, 3, 5]).pixels);
        let bad: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("f1.png") && bad[1].contains("f4.png"),
            "{bad:?}"
        );
        // A header that cannot be read is kept in the list for the reader to skip.
        let reopened = FileSet::open(&tmp.s(""), &LoadOptions::default(), true).unwrap();
        assert_eq!(reopened.len(), 5);
        assert!(FileSet::open(&tmp.s(""), &LoadOptions::default(), false).is_err());
    }
}
