//! "did you mean" for names the user types: presets, score kinds, noise models. One home, so
//! every unknown-name message suggests the same way.

/// ` (did you mean 'x'?)` when `name` is at most two edits from one of `known` (ignoring case),
/// else nothing.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let lower = name.to_ascii_lowercase();
    known
        .into_iter()
        .map(|n| (edit_distance(&lower, n), n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default()
}

/// Edits between `a` and `b`: insertions, deletions, substitutions and swaps of two
/// neighbouring characters (optimal string alignment), so `maks` is one edit from `mask`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name_within_two_edits() {
        assert_eq!(edit_distance("upsampel", "upsample"), 1);
        assert_eq!(edit_distance("maks", "mask"), 1);
        assert_eq!(edit_distance("gausian", "gaussian"), 1);
        assert_eq!(
            did_you_mean("maks", ["mse", "mae", "mask"]),
            " (did you mean 'mask'?)"
        );
        assert_eq!(
            did_you_mean("upsampel", ["galeone", "upsample"]),
            " (did you mean 'upsample'?)"
        );
        assert_eq!(
            did_you_mean("MSE2", ["mse", "mae"]),
            " (did you mean 'mse'?)"
        );
        assert_eq!(did_you_mean("resnet", ["galeone", "upsample"]), "");
    }
}
