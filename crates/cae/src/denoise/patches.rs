//! Cutting large images into square patches: training data for a denoising CAE of natural
//! photographs (a few photos give thousands of patches), and the patch sets the denoising
//! benchmark scores on.

use crate::data::{DataError, ImageSet, ImageShape};

/// Every `side × side` patch of every image of `set` on a grid of step `stride` (top-left
/// first, row by row). Images smaller than a patch give none. Labels are dropped; origins
/// become `<origin>@y,x`.
pub fn cut_patches(set: &ImageSet, side: usize, stride: usize) -> ImageSet {
    let s = set.shape;
    let (c, h, w) = (s.channels, s.height, s.width);
    let stride = stride.max(1);
    let mut pixels = Vec::new();
    let mut origins = Vec::new();
    if side > 0 && side <= h && side <= w {
        for i in 0..set.len() {
            let image = set.image(i);
            for y0 in (0..=h - side).step_by(stride) {
                for x0 in (0..=w - side).step_by(stride) {
                    for ch in 0..c {
                        for y in y0..y0 + side {
                            let row = ch * h * w + y * w;
                            pixels.extend_from_slice(&image[row + x0..row + x0 + side]);
                        }
                    }
                    origins.push(format!("{}@{y0},{x0}", set.origins[i]));
                }
            }
        }
    }
    ImageSet {
        shape: ImageShape {
            channels: c,
            height: side,
            width: side,
        },
        pixels,
        labels: None,
        class_names: None,
        origins,
    }
}

/// Joins sets of one shape into one (e.g. the patches of several photos of different sizes).
pub fn concat(sets: Vec<ImageSet>) -> Result<ImageSet, DataError> {
    let mut iter = sets.into_iter();
    let Some(mut all) = iter.next() else {
        return Err(DataError::NothingToJoin);
    };
    all.labels = None;
    for s in iter {
        all.append(s)?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_a_grid_of_patches() {
        // one 2x4x5 image whose values are their own index
        let set = ImageSet {
            shape: ImageShape {
                channels: 2,
                height: 4,
                width: 5,
            },
            pixels: (0..40).map(|v| v as f32).collect(),
            labels: Some(vec![3]),
            class_names: None,
            origins: vec!["a.png".into()],
        };
        let p = cut_patches(&set, 2, 2);
        // y in {0, 2}, x in {0, 2}: 4 patches
        assert_eq!(p.len(), 4);
        assert_eq!(p.shape.to_string(), "2x2x2");
        assert_eq!(p.image(1), &[2.0, 3.0, 7.0, 8.0, 22.0, 23.0, 27.0, 28.0]);
        assert_eq!(p.origins[3], "a.png@2,2");
        assert!(cut_patches(&set, 6, 1).is_empty());
        let both = concat(vec![p.clone(), p]).unwrap();
        assert_eq!(both.len(), 8);
        assert!(concat(vec![both, cut_patches(&set, 3, 1)]).is_err());
    }
}
