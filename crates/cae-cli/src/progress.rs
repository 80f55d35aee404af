//! Training progress on the terminal: a bar per epoch with the running loss and images/s, and
//! one summary line per epoch (the only output when stderr is not a terminal).

use cae::train::{EpochRecord, Observer};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    epoch: usize,
    epochs: usize,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            bar: None,
            epoch: 0,
            epochs: 0,
            quiet,
        }
    }
}

impl Observer for Progress {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epoch = epoch;
        self.epochs = epochs;
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        let style =
            ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} {elapsed_precise}")
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
