//! Derive macros of [gluebind](https://docs.rs/gluebind). Use them through the `gluebind`
//! crate (`gluebind::Model`), which holds the traits and types the generated code names.

mod attr;
mod expand;
mod ident;
mod sql_type;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `gluebind::model::Model` for a struct with named fields: its table, columns and
/// SQL types, the row ⇄ struct conversions and a typed column handle per field
/// (`User::EMAIL`). See the `gluebind::model` module for the attributes.
#[proc_macro_derive(Model, attributes(gluebind))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::model(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
