//! Host bindings for the `weir:step` world, generated once from `wit/`.

wasmtime::component::bindgen!({
    world: "step",
    path: "../wit",
    imports: { "weir:step/state": async },
    exports: { default: async },
});
