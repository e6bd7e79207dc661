//! The GeoJSON geometries the contract uses: `[lon, lat]` positions, Point, LineString, Polygon.

use serde::{Deserialize, Serialize};

/// A GeoJSON geometry. Only the three types sealwatch needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "coordinates")]
pub enum Geometry {
    Point([f64; 2]),
    LineString(Vec<[f64; 2]>),
    /// The first ring is the outer boundary, the others are holes; rings are closed.
    Polygon(Vec<Vec<[f64; 2]>>),
}

/// Why a geometry is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GeometryError(pub String);

fn check_position(p: [f64; 2]) -> Result<(), GeometryError> {
    let [lon, lat] = p;
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(GeometryError(format!(
            "position [{lon}, {lat}] is not [lon, lat] within WGS 84 bounds"
        )));
    }
    Ok(())
}

impl Geometry {
    pub fn type_name(&self) -> &'static str {
        match self {
            Geometry::Point(_) => "Point",
            Geometry::LineString(_) => "LineString",
            Geometry::Polygon(_) => "Polygon",
        }
    }

    /// Checks coordinates and shape: a LineString needs 2 positions, a Polygon ring 4 and closed.
    pub fn validate(&self) -> Result<(), GeometryError> {
        match self {
            Geometry::Point(p) => check_position(*p),
            Geometry::LineString(ps) => {
                if ps.len() < 2 {
                    return Err(GeometryError(
                        "expected a LineString with at least 2 positions".into(),
                    ));
                }
                ps.iter().try_for_each(|p| check_position(*p))
            }
            Geometry::Polygon(rings) => {
                if rings.is_empty() {
                    return Err(GeometryError("a Polygon needs at least one ring".into()));
                }
                for (i, ring) in rings.iter().enumerate() {
                    if ring.len() < 4 {
                        return Err(GeometryError(format!(
                            "ring {i} has {} positions; a closed ring needs at least 4",
                            ring.len()
                        )));
                    }
                    if ring.first() != ring.last() {
                        return Err(GeometryError(format!(
                            "ring {i} is not closed (the last position must repeat the first)"
                        )));
                    }
                    ring.iter().try_for_each(|p| check_position(*p))?;
                }
                Ok(())
            }
        }
    }
}
