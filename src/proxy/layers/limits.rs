//! Layer 3: limits. A pass-through for now: governance (rate limits, budgets reserved before a
//! call) plugs in here, after the request is read and before it is routed.

use super::Layer;

#[derive(Default)]
pub struct Limits;

impl Layer for Limits {}
