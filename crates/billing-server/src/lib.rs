#![doc = include_str!("../README.md")]

pub mod build_info;
pub mod config;
pub mod startup;
pub mod telemetry;
