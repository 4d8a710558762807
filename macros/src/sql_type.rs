//! Rust field types → GlueSQL column types.

use syn::{GenericArgument, PathArguments, Type};

/// Supported field types, as listed in error messages.
pub const SUPPORTED: &str = "i8, i16, i32, i64, u8, u16, u32, u64, f64, bool, String, Vec<u8>, \
                             and Option<T> of these (a NULL-able column)";

/// A field's column type.
pub struct SqlType {
    /// GlueSQL's name for the type.
    pub name: &'static str,
    /// `Option<T>`: the column accepts NULL.
    pub nullable: bool,
}

/// The last path segment of `ty` with its generic arguments, if `ty` is a plain path.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn single_type_arg(segment: &syn::PathSegment) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match (args.args.len(), args.args.first()) {
        (1, Some(GenericArgument::Type(inner))) => Some(inner),
        _ => None,
    }
}

/// The GlueSQL type of a non-optional field type, matched by name: the generated code also
/// requires `gluebind::model::ColumnType`, which catches a look-alike type of the same name.
fn scalar(ty: &Type) -> Option<&'static str> {
    let segment = last_segment(ty)?;
    let name = segment.ident.to_string();
    if name == "Vec" {
        let inner = last_segment(single_type_arg(segment)?)?;
        return (inner.ident == "u8" && inner.arguments.is_none()).then_some("BYTEA");
    }
    if !segment.arguments.is_none() {
        return None;
    }
    Some(match name.as_str() {
        "i8" => "INT8",
        "i16" => "INT16",
        "i32" => "INT32",
        "i64" => "INTEGER",
        "u8" => "UINT8",
        "u16" => "UINT16",
        "u32" => "UINT32",
        "u64" => "UINT64",
        "f64" => "FLOAT",
        "bool" => "BOOLEAN",
        "String" => "TEXT",
        _ => return None,
    })
}

/// The column type of a field type, or `None` when it is not supported.
pub fn of(ty: &Type) -> Option<SqlType> {
    if let Some(segment) = last_segment(ty).filter(|s| s.ident == "Option") {
        let inner = single_type_arg(segment)?;
        return scalar(inner).map(|name| SqlType {
            name,
            nullable: true,
        });
    }
    scalar(ty).map(|name| SqlType {
        name,
        nullable: false,
    })
}
