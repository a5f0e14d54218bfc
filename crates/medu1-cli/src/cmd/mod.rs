pub mod bench;
pub mod data;
pub mod score;
pub mod setup;
