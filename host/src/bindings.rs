//! Host bindings for the `weir:step` world, generated once from `wit/`.

wasmtime::component::bindgen!({
    world: "step",
    path: "../wit",
    imports: { "weir:step/state": async, "weir:step/model": async },
    exports: { default: async },
});
