#![doc = include_str!("../README.md")]

pub mod build_info;
pub mod catchup_loop;
mod catchup_metrics;
pub mod config;
pub mod events_out;
pub mod metrics;
pub mod queues;
pub mod reconcile_sweep;
pub mod startup;
pub mod telemetry;
