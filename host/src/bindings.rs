//! Host bindings for the `weir:step` world, generated once from `wit/`.

wasmtime::component::bindgen!({
    world: "step",
    path: "../wit",
    exports: { default: async },
});
