//! Record and replay: every attempt keeps a tape of what it read from the host besides its
//! input (clock reads, random bytes, outgoing HTTP), and model calls are journaled already,
//! so a recorded run can be driven again with every answer taken from the record and nothing
//! sent. A strict replay that comes out different is a typed `nondeterminism` report naming
//! the step, the attempt and the position where it first went another way.

mod deck;
mod findings;
pub mod http;
pub mod model;
mod recorded;
mod rerun;
pub mod sources;
mod strict;
mod tape;

pub use deck::{Deck, HttpTurn};
pub use findings::{Findings, Nondeterminism};
pub use recorded::{Matching, OnMiss, Recorded, Tally};
pub use rerun::{Restore, rerun_from_step};
pub use strict::{
    CallCounts, Options, ReplayError, ReplayReport, Scratch, StepComparison, WouldReview, replay,
    strict,
};
pub use tape::{AttemptTape, HttpExchange, HttpRequestRecord, HttpResponseRecord, MATCHED_HEADERS};
