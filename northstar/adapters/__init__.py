"""Adapters: raw tables of a real system (Stripe, HubSpot, Zendesk, Amplitude, Segment) in,
contract tables out, as pure polars on LazyFrames. See northstar.adapters.base."""
