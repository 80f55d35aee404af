//! Training progress: on a terminal, a bar per epoch with the running loss, images/s and the
//! epoch's ETA; when stderr is not a terminal (a log file, CI, `nohup`), a plain line every
//! [`PLAIN_EVERY`] within long epochs instead, so a log shows that a slow epoch is moving and
//! when it will end. Both end each epoch with one summary line.

use cae::train::{EpochRecord, Observer};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a plain progress line is printed within an epoch when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);
/// Overrides [`PLAIN_EVERY`] (seconds; 0 prints a line after every step).
const PLAIN_EVERY_ENV: &str = "CAE_PROGRESS_SECONDS";

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Plain lines instead of a bar (stderr is not a terminal), with their interval.
    plain: Option<Duration>,
    epoch: usize,
    epochs: usize,
    steps: usize,
    epoch_started: Instant,
    last_line: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let plain = (!std::io::stderr().is_terminal()).then(|| {
            std::env::var(PLAIN_EVERY_ENV)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map_or(PLAIN_EVERY, Duration::from_secs_f64)
        });
        Progress {
            bar: None,
            plain,
            epoch: 0,
            epochs: 0,
            steps: 0,
            epoch_started: Instant::now(),
            last_line: Instant::now(),
            quiet,
        }
    }
}

/// The time left in an epoch after `step` of `steps` steps took `elapsed`, at the same pace.
fn eta(elapsed: Duration, step: usize, steps: usize) -> Duration {
    if step == 0 {
        return Duration::ZERO;
    }
    elapsed.mul_f64(steps.saturating_sub(step) as f64 / step as f64)
}

/// `1m05s`, `42s`, `1h02m`.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The plain progress line within an epoch.
fn plain_line(
    (epoch, epochs): (usize, usize),
    (step, steps): (usize, usize),
    loss: f64,
    images_per_second: f64,
    elapsed: Duration,
) -> String {
    format!(
        "epoch {epoch:>3}/{epochs}  step {step}/{steps}  loss {loss:.6}  {images_per_second:.0} img/s  ETA {} (epoch)",
        short_duration(eta(elapsed, step, steps))
    )
}

impl Observer for Progress {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epoch = epoch;
        self.epochs = epochs;
        self.steps = steps;
        self.epoch_started = Instant::now();
        self.last_line = self.epoch_started;
        if self.quiet || self.plain.is_some() {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        let style = ProgressStyle::with_template(
            "epoch {msg} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(format!("{epoch}/{epochs}"));
        self.bar = Some(bar);
    }

    fn step(&mut self, step: usize, loss: f64, images_per_second: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            bar.set_message(format!(
                "{}/{} loss {loss:.5} {images_per_second:.0} img/s",
                self.epoch, self.epochs
            ));
        }
        let Some(every) = self.plain else {
            return;
        };
        if self.quiet || step >= self.steps || self.last_line.elapsed() < every {
            return;
        }
        self.last_line = Instant::now();
        eprintln!(
            "{}",
            plain_line(
                (self.epoch, self.epochs),
                (step, self.steps),
                loss,
                images_per_second,
                self.epoch_started.elapsed(),
            )
        );
    }

    fn epoch_end(&mut self, r: &EpochRecord, improved: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let val = r
            .val_loss
            .map(|v| format!("{v:.6}"))
            .unwrap_or_else(|| "-".into());
        eprintln!(
            "epoch {:>3}/{}  train loss {:.6}  val loss {val}  {:.1}s  {:.0} img/s{}",
            r.epoch,
            self.epochs,
            r.train_loss,
            r.seconds,
            r.images_per_second,
            if improved { "  *best" } else { "" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_is_the_rest_of_the_epoch_at_the_pace_so_far() {
        assert_eq!(eta(Duration::from_secs(10), 1, 4), Duration::from_secs(30));
        assert_eq!(eta(Duration::from_secs(10), 4, 4), Duration::ZERO);
        assert_eq!(eta(Duration::from_secs(10), 0, 4), Duration::ZERO);
        assert_eq!(short_duration(Duration::from_secs(42)), "42s");
        assert_eq!(short_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(short_duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn a_plain_line_names_the_epoch_the_step_and_the_eta() {
        let line = plain_line((3, 30), (100, 400), 0.0123, 51.0, Duration::from_secs(20));
        assert_eq!(
            line,
            "epoch   3/30  step 100/400  loss 0.012300  51 img/s  ETA 1m00s (epoch)"
        );
    }
}
