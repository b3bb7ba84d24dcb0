//! The request layers, in order. Each is one module with one job and up to six hooks
//! ([`Layer`]); the list below is the only place their order is written.
//!
//! | # | layer | on the request | on the response |
//! |---|---|---|---|
//! | 1 | [`auth`] | endpoint, health and model list, gateway key, feature tag | |
//! | 2 | [`request`] | deadline, the whole body (bounded), model, stream flag | |
//! | 3 | [`conversation`] | Responses: splice in `previous_response_id`'s conversation | keep the turn the client received |
//! | 4 | [`routing`] | allow-list, resolution, capability filter, strategy | `x-switchyard-route-reason` |
//! | 5 | [`experiments`] | the variant: its prompt and params, its target first | `x-switchyard-variant`; queue a judged sample |
//! | 6 | [`bodies`] | whether bodies are kept (key and route rule) | capture what the client gets; queue the record |
//! | 7 | [`translation`] | (the request translator comes with the routing plan) | provider dialect -> client dialect |
//! | 8 | [`cache`] | the cache plan (off, bypass, on with a TTL) | record the answer; render records (fresh or hits) |
//! | 9 | [`accounting`] | | usage from the provider's bytes; the cost header; settle usage and cost |
//! | 10 | [`limits`] | reserve the worst case (rpm, tpm, budget) or answer 429/402 | cut a stream past its reservation; settle to the true cost |
//! | 11 | [`race`] | race and hedge routes: run the legs, answer with the winner | |
//! | 12 | [`outputs`] | | `x-switchyard-*` headers; metrics, access log, ledger row |
//!
//! `conversation` comes before `routing` because the conversation it splices in is part of
//! the request every target is sent (and translated from), and above `translation` so it keeps
//! the answer as the client received it.
//! `limits` comes after `routing` because a reservation is priced at the candidates' prices,
//! and after `accounting` because its finish hook settles the reservation with the cost
//! accounting's finish hook has just worked out. `bodies` comes before `accounting` (whose
//! finish hook consumes the usage tally a stream's assembled answer is read from) and above
//! `translation` (so it sees the answer in the client's dialect).
//!
//! Request hooks run top to bottom and any layer may answer the request itself. Response
//! hooks run bottom to top (the provider's bytes reach accounting first, the client last):
//! usage is read from the provider's own bytes, then the cache records or renders, then
//! translation. Translation sits above the cache because the cache keys on the canonical
//! request the translator decodes. The finish hooks run top to bottom.
//!
//! Dispatch is static: [`layers!`] expands the list into plain calls, with no boxed future per
//! layer, and a hook a layer does not implement compiles to nothing.

pub mod accounting;
pub mod auth;
pub mod bodies;
pub mod cache;
pub mod conversation;
pub mod experiments;
pub mod limits;
pub mod outputs;
pub mod race;
pub mod request;
pub mod routing;
pub mod translation;

use super::ctx::RequestCtx;
use super::{GatewayState, Shared};
use crate::error::GatewayError;
use crate::summary::Account;
use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// What a request hook decided.
pub enum Flow {
    /// On to the next layer.
    Continue,
    /// The layer answered the request itself.
    Answered,
}

/// Why a request hook stopped the request.
pub enum Failure {
    /// Answered with this error, in the client's dialect.
    Gateway(GatewayError),
    /// The client connection failed; nothing can be answered.
    Io(Box<pingora_error::Error>),
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Failure::Gateway(e)
    }
}

/// What request hooks work with.
pub struct Cx<'a> {
    pub gw: &'a GatewayState,
    /// Process-wide parts: the outbound client (race legs, hedges).
    pub shared: &'a Shared,
    pub session: &'a mut Session,
    pub ctx: &'a mut RequestCtx,
}

/// What finish hooks work with.
pub struct Finish<'a> {
    pub shared: &'a Shared,
    pub session: &'a Session,
    pub error: Option<&'a pingora_error::Error>,
    /// Filled by accounting, read by the outputs.
    pub account: Account,
}

/// One layer's hooks; every one has a do-nothing default.
pub trait Layer {
    /// `request_filter`, top to bottom.
    async fn on_request(&self, _cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        Ok(Flow::Continue)
    }

    /// `upstream_response_filter`, bottom to top: the header of a provider answer that the
    /// walk decided to serve.
    fn on_upstream_header(
        &self,
        _ctx: &mut RequestCtx,
        _resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        Ok(())
    }

    /// `upstream_response_body_filter`, bottom to top: the provider's bytes, before the cache
    /// stores them.
    fn on_upstream_body(
        &self,
        _cache: &mut pingora_cache::HttpCache,
        _ctx: &mut RequestCtx,
        _body: &mut Option<Bytes>,
        _end: bool,
    ) {
    }

    /// `response_filter`, bottom to top: the header the client gets (proxied or a cache hit).
    fn on_response_header(
        &self,
        _ctx: &mut RequestCtx,
        _resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        Ok(())
    }

    /// `response_body_filter`, bottom to top: the bytes the client gets.
    fn on_body(&self, _ctx: &mut RequestCtx, _body: &mut Option<Bytes>, _end: bool) {}

    /// `logging`, top to bottom: after the request, answered or not.
    async fn on_finish(&self, _ctx: &mut RequestCtx, _fin: &mut Finish<'_>) {}
}

/// Expands the ordered list into one dispatcher per hook: request and finish hooks in list
/// order, response hooks in reverse.
macro_rules! layers {
    ($($layer:path),+ $(,)?) => {
        layers!(@emit [$($layer),+] []);
    };
    (@emit [$first:path $(, $rest:path)*] [$($rev:path),*]) => {
        layers!(@emit [$($rest),*] [$first $(, $rev)*]);
    };
    (@emit [] [$($rev:path),+]) => {
        layers!(@fns [$($rev),+]);
    };
    (@fns [$($rev:path),+]) => {
        /// Runs every layer's request hook in order; stops at the first that answers.
        pub async fn on_request(cx: &mut Cx<'_>) -> Result<Flow, Failure> {
            layers!(@forward on_request cx [$($rev),+] []);
            Ok(Flow::Continue)
        }

        pub fn on_upstream_header(
            ctx: &mut RequestCtx,
            resp: &mut ResponseHeader,
        ) -> pingora_error::Result<()> {
            $( <$rev as Default>::default().on_upstream_header(ctx, resp)?; )+
            Ok(())
        }

        pub fn on_upstream_body(
            cache: &mut pingora_cache::HttpCache,
            ctx: &mut RequestCtx,
            body: &mut Option<Bytes>,
            end: bool,
        ) {
            $( <$rev as Default>::default().on_upstream_body(cache, ctx, body, end); )+
        }

        pub fn on_response_header(
            ctx: &mut RequestCtx,
            resp: &mut ResponseHeader,
        ) -> pingora_error::Result<()> {
            $( <$rev as Default>::default().on_response_header(ctx, resp)?; )+
            Ok(())
        }

        pub fn on_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
            $( <$rev as Default>::default().on_body(ctx, body, end); )+
        }

        pub async fn on_finish(ctx: &mut RequestCtx, fin: &mut Finish<'_>) {
            layers!(@forward_finish ctx fin [$($rev),+] []);
        }
    };
    // Reverses the (already reversed) list back into list order for the forward hooks.
    (@forward $hook:ident $cx:ident [$first:path $(, $rest:path)*] [$($fwd:path),*]) => {
        layers!(@forward $hook $cx [$($rest),*] [$first $(, $fwd)*]);
    };
    (@forward $hook:ident $cx:ident [] [$($fwd:path),+]) => {
        $(
            if let Flow::Answered = <$fwd as Default>::default().$hook($cx).await? {
                return Ok(Flow::Answered);
            }
        )+
    };
    (@forward_finish $ctx:ident $fin:ident [$first:path $(, $rest:path)*] [$($fwd:path),*]) => {
        layers!(@forward_finish $ctx $fin [$($rest),*] [$first $(, $fwd)*]);
    };
    (@forward_finish $ctx:ident $fin:ident [] [$($fwd:path),+]) => {
        $( <$fwd as Default>::default().on_finish($ctx, $fin).await; )+
    };
}

layers! {
    auth::Auth,
    request::Request,
    conversation::Conversation,
    routing::Routing,
    experiments::Experiments,
    bodies::Bodies,
    translation::Translation,
    cache::Cache,
    accounting::Accounting,
    limits::Limits,
    race::Race,
    outputs::Outputs,
}

/// Every request's hook futures are boxed by pingora's `async_trait` and moved into the box
/// whole, so their size is paid in copies on every request. A rare path with a large future
/// (a race, an upload, a shared store's call) is boxed where it is taken; these bounds catch
/// one that is not (a race inline made every `request_filter` future 12 KB).
#[cfg(test)]
mod future_sizes {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, R>(_f: impl Fn(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn request_and_finish_hooks_and_the_context_stay_small() {
        // Raw pointers stand in for the borrows: the closures are never called.
        let on_request = returned_size(|cx: *mut Cx<'static>| unsafe { on_request(&mut *cx) });
        let on_finish = returned_size(|p: (*mut RequestCtx, *mut Finish<'static>)| unsafe {
            on_finish(&mut *p.0, &mut *p.1)
        });
        let ctx = std::mem::size_of::<RequestCtx>();
        assert!(
            on_request <= 1024,
            "the request hooks' future is {on_request} bytes"
        );
        assert!(
            on_finish <= 512,
            "the finish hooks' future is {on_finish} bytes"
        );
        assert!(ctx <= 1024, "RequestCtx is {ctx} bytes");
    }
}
