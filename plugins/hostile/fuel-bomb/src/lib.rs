//! Attack: a computation that does finish, but only after ~10^12 instructions.
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct FuelBomb;

impl Step for FuelBomb {
    type Input = Value;
    type Output = u64;

    fn meta() -> Meta {
        Meta::new("hostile-fuel-bomb", "1.0.0")
    }

    fn run(_ctx: &Context, _input: Value) -> Result<Output<u64>, StepError> {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for i in 0..1_000_000_000_000u64 {
            hash = std::hint::black_box((hash ^ i).wrapping_mul(0x0100_0000_01b3));
        }
        Ok(Output::new(hash))
    }
}

weir_sdk::export_step!(FuelBomb);
