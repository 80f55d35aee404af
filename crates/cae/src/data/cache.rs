//! The decoded-image cache of a streamed set (`cae train --stream --cache-mb N`): images kept
//! as their files store them (8-bit images one byte per value, a quarter of the f32 an
//! in-memory set holds), so an epoch after the first skips reading and decompressing them.
//!
//! What is cached is the decoder's output, before the set's channel rule, resize and
//! normalisation, which run on every read as they do without a cache: a cached image gives
//! exactly the values of a fresh decode, so a run with a cache trains bit for bit as one
//! without, and a resume (which starts with an empty cache) stays exact. Images are kept in
//! the order they are first read until the budget is spent; the rest are decoded every time.

use image::DynamicImage;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Decoded images up to a byte budget, shared by the sets selected from one folder.
#[derive(Debug)]
pub struct DecodeCache {
    budget: u64,
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    bytes: u64,
    images: HashMap<PathBuf, Arc<DynamicImage>>,
    /// Images offered that did not fit the budget.
    refused: usize,
}

/// How full a cache is, for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUse {
    pub images: usize,
    pub bytes: u64,
    /// Images read that did not fit the budget.
    pub refused: usize,
    pub budget: u64,
}

impl DecodeCache {
    /// A cache of at most `mb` MiB of decoded images.
    pub fn new(mb: u64) -> DecodeCache {
        DecodeCache {
            budget: mb.saturating_mul(1 << 20),
            kept: Mutex::new(Kept::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A worker that panicked left the map whole (every change is one insert).
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached image of `path`, if kept.
    pub fn get(&self, path: &Path) -> Option<Arc<DynamicImage>> {
        self.lock().images.get(path).cloned()
    }

    /// Keeps `image` (decoded from `path`) when it fits what is left of the budget.
    pub fn offer(&self, path: &Path, image: &Arc<DynamicImage>) {
        let size = image.as_bytes().len() as u64;
        let mut kept = self.lock();
        if kept.images.contains_key(path) {
            return;
        }
        if kept.bytes + size > self.budget {
            kept.refused += 1;
            return;
        }
        kept.bytes += size;
        kept.images.insert(path.to_path_buf(), Arc::clone(image));
    }

    /// What the cache holds now.
    pub fn usage(&self) -> CacheUse {
        let kept = self.lock();
        CacheUse {
            images: kept.images.len(),
            bytes: kept.bytes,
            refused: kept.refused,
            budget: self.budget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GrayImage;

    fn gray(side: u32) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(side, side, |x, y| {
            image::Luma([(x * 7 + y) as u8])
        }))
    }

    #[test]
    fn keeps_images_until_the_budget_is_spent_and_counts_the_rest() {
        // 1 MiB holds four 512x512 gray images (256 KiB each), not five.
        let cache = DecodeCache::new(1);
        for i in 0..5 {
            cache.offer(Path::new(&format!("{i}.png")), &Arc::new(gray(512)));
        }
        let used = cache.usage();
        assert_eq!((used.images, used.bytes, used.refused), (4, 1 << 20, 1));
        assert_eq!(
            cache.get(Path::new("0.png")).unwrap().as_bytes(),
            gray(512).as_bytes()
        );
        assert!(cache.get(Path::new("4.png")).is_none());
        // Offering a kept image again changes nothing.
        cache.offer(Path::new("0.png"), &Arc::new(gray(512)));
        assert_eq!(cache.usage(), used);
    }
}
