//! Code generation for `#[derive(Model)]`.

use crate::{attr, ident, sql_type};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{spanned::Spanned, Data, DeriveInput, Fields, LitStr};

/// One field, checked.
struct Column<'a> {
    field: &'a syn::Field,
    name: String,
    sql_type: sql_type::SqlType,
    primary_key: bool,
    unique: bool,
    index: bool,
}

fn checked_ident(lit: &LitStr, what: &str) -> syn::Result<String> {
    let value = lit.value();
    match ident::invalid(&value) {
        None => Ok(value),
        Some(why) => Err(syn::Error::new(
            lit.span(),
            format!("{what} {value:?} is not a valid SQL identifier: {why}"),
        )),
    }
}

pub fn model(input: &DeriveInput) -> syn::Result<TokenStream> {
    let ty = &input.ident;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            _ => {
                return Err(syn::Error::new(
                    ty.span(),
                    format!(
                        "#[derive(Model)] needs a struct with named fields, one per column \
                         (`struct {ty} {{ id: i64, ... }}`); tuple and unit structs have no \
                         column names"
                    ),
                ))
            }
        },
        Data::Enum(_) | Data::Union(_) => {
            return Err(syn::Error::new(
                ty.span(),
                format!(
                    "#[derive(Model)] needs a struct with named fields, one per column; `{ty}` \
                     is not a struct"
                ),
            ))
        }
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(Model)] does not support generic structs: a model is one table",
        ));
    }
    let attrs = attr::model(&input.attrs)?;
    let table = match &attrs.table {
        Some(lit) => checked_ident(lit, "table name")?,
        None => {
            let name = ident::snake_case(&ty.to_string());
            if let Some(why) = ident::invalid(&name) {
                return Err(syn::Error::new(
                    ty.span(),
                    format!(
                        "the default table name {name:?} is not a valid SQL identifier ({why}); \
                         name the table with #[gluebind(table = \"...\")]"
                    ),
                ));
            }
            name
        }
    };
    let bind_key = match &attrs.bind_key {
        Some(lit) if lit.value().is_empty() => {
            return Err(syn::Error::new(
                lit.span(),
                "bind_key must not be empty; leave it out for the default engine",
            ))
        }
        Some(lit) => {
            let key = lit.value();
            quote!(::core::option::Option::Some(#key))
        }
        None => quote!(::core::option::Option::None),
    };

    let mut columns: Vec<Column> = Vec::with_capacity(fields.len());
    for field in fields {
        let field_attrs = attr::field(&field.attrs)?;
        let rust_name = field
            .ident
            .as_ref()
            .map(|i| i.to_string().trim_start_matches("r#").to_owned())
            .unwrap_or_default();
        let name = match &field_attrs.column {
            Some(lit) => checked_ident(lit, "column name")?,
            None => match ident::invalid(&rust_name) {
                None => rust_name,
                Some(why) => {
                    return Err(syn::Error::new_spanned(
                        field,
                        format!(
                            "field name {rust_name:?} is not a valid SQL identifier ({why}); \
                             name its column with #[gluebind(column = \"...\")]"
                        ),
                    ))
                }
            },
        };
        if columns.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
            return Err(syn::Error::new(
                field.span(),
                format!("two fields map to the column {name:?}; rename one with #[gluebind(column = \"...\")]"),
            ));
        }
        let Some(sql_type) = sql_type::of(&field.ty) else {
            return Err(syn::Error::new_spanned(
                &field.ty,
                format!(
                    "field `{name}` has a type gluebind cannot map to a column; supported: {}",
                    sql_type::SUPPORTED
                ),
            ));
        };
        if let (Some(span), Some(_)) = (field_attrs.index, field_attrs.primary_key) {
            return Err(syn::Error::new(
                span,
                format!(
                    "`{name}` is the primary key, already read in key order and by key: drop \
                     #[gluebind(index)]"
                ),
            ));
        }
        if let Some(span) = field_attrs.primary_key {
            if let Some(first) = columns.iter().find(|c| c.primary_key) {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "model `{ty}` has two primary keys (`{}` and `{name}`); gluebind models \
                         have exactly one #[gluebind(primary_key)] field",
                        first.name
                    ),
                ));
            }
            if sql_type.nullable {
                return Err(syn::Error::new_spanned(
                    &field.ty,
                    format!(
                        "primary key `{name}` cannot be an Option: a primary key is never NULL"
                    ),
                ));
            }
        }
        columns.push(Column {
            field,
            name,
            sql_type,
            primary_key: field_attrs.primary_key.is_some(),
            unique: field_attrs.unique,
            index: field_attrs.index.is_some(),
        });
    }
    let Some(key) = columns.iter().find(|c| c.primary_key) else {
        return Err(syn::Error::new(
            ty.span(),
            format!(
                "model `{ty}` has no primary key: mark one field with #[gluebind(primary_key)] \
                 (e.g. `#[gluebind(primary_key)] id: i64`)"
            ),
        ));
    };
    Ok(generate(input, &table, &bind_key, &columns, key))
}

fn generate(
    input: &DeriveInput,
    table: &str,
    bind_key: &TokenStream,
    columns: &[Column],
    key: &Column,
) -> TokenStream {
    let ty = &input.ident;
    let m = quote!(::gluebind::model);
    let key_index = columns
        .iter()
        .position(|c| c.primary_key)
        .unwrap_or_default();
    let key_ty = &key.field.ty;
    let key_field = &key.field.ident;

    let metas = columns.iter().map(|c| {
        let (name, sql, nullable, unique) =
            (&c.name, c.sql_type.name, c.sql_type.nullable, c.unique);
        let meta = quote!(#m::ColumnMeta::__new(#name, #sql, #nullable, #unique));
        if c.index {
            quote!(#meta.__indexed())
        } else {
            meta
        }
    });
    let reads = columns.iter().map(|c| {
        let (field, name, fty) = (&c.field.ident, &c.name, &c.field.ty);
        quote_spanned!(fty.span()=> #field: row.get::<#fty>(#name)?)
    });
    let params = columns.iter().map(|c| {
        let (field, fty) = (&c.field.ident, &c.field.ty);
        quote_spanned!(fty.span()=> <#fty as #m::ColumnType>::to_param(&self.#field))
    });
    let handles = columns.iter().map(|c| {
        let (fty, name, vis) = (&c.field.ty, &c.name, &c.field.vis);
        let rust = c
            .field
            .ident
            .as_ref()
            .map(|i| i.to_string().trim_start_matches("r#").to_uppercase())
            .unwrap_or_default();
        let konst = format_ident!(
            "{}",
            rust,
            span = c
                .field
                .ident
                .as_ref()
                .map_or(Span::call_site(), |i| i.span())
        );
        let doc = format!("Column `{name}` of table `{table}`, for filters and ordering.");
        quote!(#[doc = #doc] #vis const #konst: #m::Column<#ty, #fty> = #m::Column::__new(#name);)
    });

    quote! {
        impl #m::Model for #ty {
            type Key = #key_ty;

            // The columns in a `const` of their own: a `&[..]` of values with a destructor
            // (the names are `Cow`s) is `'static` only as a constant's value.
            const META: &'static #m::ModelMeta = {
                const COLUMNS: &[#m::ColumnMeta] = &[#(#metas),*];
                &#m::ModelMeta::__new(#table, COLUMNS, #key_index, #bind_key)
            };

            fn from_row(row: &::gluebind::Row<'_>) -> ::gluebind::Result<Self> {
                ::core::result::Result::Ok(Self { #(#reads),* })
            }

            fn to_params(&self) -> ::std::vec::Vec<::gluebind::ParamLiteral> {
                ::std::vec![#(#params),*]
            }

            fn key(&self) -> ::gluebind::ParamLiteral {
                <#key_ty as #m::ColumnType>::to_param(&self.#key_field)
            }
        }

        #[allow(dead_code)]
        impl #ty {
            #(#handles)*
        }
    }
}
