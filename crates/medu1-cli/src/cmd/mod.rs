pub mod bench;
pub mod calc;
pub mod data;
pub mod eval;
pub mod score;
pub mod setup;
pub mod profile;
pub mod serve;
