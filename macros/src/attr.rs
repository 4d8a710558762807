//! The `#[gluebind(...)]` attributes on the struct and on its fields.

use syn::{spanned::Spanned, Attribute, LitStr};

/// Struct attributes: `#[gluebind(table = "users", bind_key = "cache")]`.
#[derive(Default)]
pub struct ModelAttrs {
    pub table: Option<LitStr>,
    pub bind_key: Option<LitStr>,
}

/// Field attributes: `#[gluebind(primary_key)]`, `#[gluebind(unique)]`, `#[gluebind(index)]`,
/// `#[gluebind(column = "e_mail")]`.
#[derive(Default)]
pub struct FieldAttrs {
    pub primary_key: Option<proc_macro2::Span>,
    pub unique: bool,
    pub index: Option<proc_macro2::Span>,
    pub column: Option<LitStr>,
}

fn gluebind_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("gluebind"))
}

fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    key: &str,
    span: proc_macro2::Span,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(span, format!("`{key}` is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

pub fn model(attrs: &[Attribute]) -> syn::Result<ModelAttrs> {
    let mut out = ModelAttrs::default();
    for attr in gluebind_attrs(attrs) {
        attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("table") {
                set_once(&mut out.table, meta.value()?.parse()?, "table", span)
            } else if meta.path.is_ident("bind_key") {
                set_once(&mut out.bind_key, meta.value()?.parse()?, "bind_key", span)
            } else {
                Err(meta.error(format!(
                    "unknown gluebind attribute `{}` on a model; expected `table = \"...\"` or \
                     `bind_key = \"...\"` (field attributes: primary_key, unique, index, column)",
                    path_text(&meta.path)
                )))
            }
        })?;
    }
    Ok(out)
}

pub fn field(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    for attr in gluebind_attrs(attrs) {
        attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("primary_key") {
                set_once(&mut out.primary_key, span, "primary_key", span)
            } else if meta.path.is_ident("unique") {
                out.unique = true;
                Ok(())
            } else if meta.path.is_ident("index") {
                set_once(&mut out.index, span, "index", span)
            } else if meta.path.is_ident("column") {
                set_once(&mut out.column, meta.value()?.parse()?, "column", span)
            } else {
                Err(meta.error(format!(
                    "unknown gluebind attribute `{}` on a field; expected `primary_key`, \
                     `unique`, `index` or `column = \"...\"` (model attributes: table, bind_key)",
                    path_text(&meta.path)
                )))
            }
        })?;
    }
    Ok(out)
}

fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}
