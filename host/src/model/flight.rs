//! Single flight: identical model requests in flight at once on this host make one upstream
//! call. The first caller of a request goes upstream; the others wait for it and are then
//! answered from the response cache it filled, as a repeat would be. Ten identical tickets
//! arriving together cost one call, not ten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as Turn, OwnedMutexGuard};
use tokio::time::Instant;

/// The requests in flight, by their cache key; an entry lives while someone holds or awaits
/// its turn.
#[derive(Default)]
pub(super) struct Flights {
    turns: Mutex<HashMap<String, Weak<Turn<()>>>>,
}

/// A caller's turn at a request: held while it looks in the cache and, on a miss, calls
/// upstream and fills the cache.
pub(super) struct Flight<'a> {
    flights: &'a Flights,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Flights {
    /// Waits for the turn at `key` (the callers before it finish first); `None` when the
    /// deadline comes first.
    pub(super) async fn join(&self, key: &str, deadline: Instant) -> Option<Flight<'_>> {
        let turn = {
            let mut turns = self.turns.lock().expect("flight table poisoned");
            match turns.get(key).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    let turn = Arc::new(Turn::new(()));
                    turns.insert(key.to_string(), Arc::downgrade(&turn));
                    turn
                }
            }
        };
        match tokio::time::timeout_at(deadline, turn.lock_owned()).await {
            Ok(guard) => Some(Flight {
                flights: self,
                key: key.to_string(),
                guard: Some(guard),
            }),
            Err(_) => {
                let mut turns = self.turns.lock().expect("flight table poisoned");
                if turns.get(key).is_some_and(|w| w.strong_count() == 0) {
                    turns.remove(key);
                }
                None
            }
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut turns = self.flights.turns.lock().expect("flight table poisoned");
        // Released under the table's lock, so nobody picks the entry up in between: with no
        // one else holding the turn, the entry goes.
        if let Some(guard) = self.guard.take() {
            let alone = Arc::strong_count(OwnedMutexGuard::mutex(&guard)) == 1;
            drop(guard);
            if alone {
                turns.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn callers_of_one_key_take_turns_and_the_table_empties() {
        let flights = Flights::default();
        let far = Instant::now() + Duration::from_secs(5);
        let first = flights.join("k", far).await.unwrap();
        // A second caller of the same key waits; another key does not.
        assert!(
            flights
                .join("k", Instant::now() + Duration::from_millis(50))
                .await
                .is_none()
        );
        let other = flights.join("j", far).await.unwrap();
        drop(first);
        let again = flights.join("k", far).await.unwrap();
        drop((again, other));
        assert!(flights.turns.lock().unwrap().is_empty());
    }
}
