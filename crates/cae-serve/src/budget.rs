//! The decode-memory budget shared by every request. A small upload can declare a large image
//! (a 127 KiB PNG of 4096×4096 16-bit RGBA pixels is within the pixel limit and takes
//! hundreds of MiB to decode and resize), and the pixel limit bounds one image, not eight at
//! once. So each image reserves its worst-case decode size, read from its header
//! ([`ImageHeader::decode_bytes`](cae::data::ImageHeader::decode_bytes)), before any pixel is
//! decoded, and holds it until decoding ends: concurrent large images wait for one another
//! (within the request timeout) instead of adding up, and one that needs more than the whole
//! budget is refused at once with 413.

use crate::error::ApiError;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes are counted in KiB so the whole budget fits the semaphore's `u32` requests.
const UNIT: u64 = 1024;

/// `--decode-memory`, as permits.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
}

impl DecodeBudget {
    pub fn new(bytes: u64) -> DecodeBudget {
        let units = (bytes / UNIT)
            .min(u64::from(u32::MAX))
            .min(Semaphore::MAX_PERMITS as u64)
            .max(1);
        let total_units = units as u32;
        DecodeBudget {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
        }
    }

    /// Waits until `bytes` fit, and holds them until the permit is dropped; `name` says which
    /// image in the 413 for one that can never fit.
    pub async fn reserve(&self, bytes: u64, name: &str) -> Result<OwnedSemaphorePermit, ApiError> {
        let units = bytes.div_ceil(UNIT).max(1);
        if units > u64::from(self.total_units) {
            return Err(ApiError::too_large(format!(
                "{name}: its header declares an image that takes up to {} MiB to decode, more \
                 than the server's whole decode budget of {} MiB (--decode-memory); send a \
                 smaller image",
                bytes.div_ceil(1 << 20),
                self.total_bytes() >> 20
            )));
        }
        self.permits
            .clone()
            .acquire_many_owned(units as u32)
            .await
            .map_err(|_| ApiError::overloaded("the server is shutting down"))
    }

    pub fn total_bytes(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }

    /// Bytes not reserved right now.
    pub fn free_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use std::time::Duration;

    #[tokio::test]
    async fn decodes_wait_for_the_budget_and_an_image_over_it_is_413() {
        let budget = DecodeBudget::new(10 << 20);
        let first = budget.reserve(6 << 20, "a").await.unwrap();
        assert_eq!(budget.free_bytes(), 4 << 20);
        // A second 6 MiB image waits while the first holds its share...
        let waiting = tokio::time::timeout(Duration::from_millis(50), budget.reserve(6 << 20, "b"));
        assert!(waiting.await.is_err(), "both fit in 10 MiB at once");
        // ...and gets it once the first is done.
        drop(first);
        let second = budget.reserve(6 << 20, "b").await.unwrap();
        drop(second);
        assert_eq!(budget.free_bytes(), 10 << 20);
        let e = budget.reserve(11 << 20, "part 2").await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            e.message.starts_with("part 2:") && e.message.contains("--decode-memory"),
            "{}",
            e.message
        );
    }
}
