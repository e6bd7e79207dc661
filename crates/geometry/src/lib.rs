//! Geometry for supervision: distances in metres, zones, and route corridors, spatially indexed.
//!
//! Positions are WGS 84 `[lon, lat]` in degrees (GeoJSON order). Distances between nearby points
//! use a local equirectangular frame centred on the point being tested: within the few
//! kilometres that matter for corridors, stops and zones the error is far below GNSS noise, and
//! it costs one cosine per query instead of trigonometry per segment. Great-circle distance
//! ([`haversine_m`]) is used where points can be far apart (travel speed between reports).
//!
//! Known limit: shapes that cross the antimeridian (±180°) are not supported.
//!
//! **Architecture invariant**: no I/O, no clock; every function is deterministic.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Metres per degree of latitude on the mean sphere.
pub const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// A WGS 84 position in degrees, `[lon, lat]` as in GeoJSON.
pub type LonLat = [f64; 2];

/// Great-circle distance in metres.
pub fn haversine_m(a: LonLat, b: LonLat) -> f64 {
    let (lat1, lat2) = (a[1].to_radians(), b[1].to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b[0] - a[0]).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A local planar frame around a point: degrees to metres east and north of it.
#[derive(Clone, Copy, Debug)]
pub struct LocalFrame {
    origin: LonLat,
    m_per_deg_lon: f64,
}

impl LocalFrame {
    pub fn at(origin: LonLat) -> LocalFrame {
        LocalFrame {
            origin,
            m_per_deg_lon: M_PER_DEG * origin[1].to_radians().cos().max(1e-6),
        }
    }

    /// Metres east and north of the origin.
    #[inline]
    pub fn project(&self, p: LonLat) -> [f64; 2] {
        [
            (p[0] - self.origin[0]) * self.m_per_deg_lon,
            (p[1] - self.origin[1]) * M_PER_DEG,
        ]
    }

    pub fn origin(&self) -> LonLat {
        self.origin
    }

    /// Distance in metres from the origin to `p`.
    #[inline]
    pub fn distance_m(&self, p: LonLat) -> f64 {
        let [x, y] = self.project(p);
        (x * x + y * y).sqrt()
    }

    /// Distance in metres from the origin to the segment `a`–`b`.
    #[inline]
    pub fn distance_to_segment_m(&self, a: LonLat, b: LonLat) -> f64 {
        let [ax, ay] = self.project(a);
        let [bx, by] = self.project(b);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (ax + t * dx).hypot(ay + t * dy)
    }

    /// The box of degrees within `radius_m` of the origin.
    pub fn envelope(&self, radius_m: f64) -> AABB<[f64; 2]> {
        let (dlon, dlat) = (radius_m / self.m_per_deg_lon, radius_m / M_PER_DEG);
        AABB::from_corners(
            [self.origin[0] - dlon, self.origin[1] - dlat],
            [self.origin[0] + dlon, self.origin[1] + dlat],
        )
    }
}

/// Distance in metres between two nearby points (local frame; see the crate docs).
pub fn local_distance_m(a: LonLat, b: LonLat) -> f64 {
    LocalFrame::at(a).distance_m(b)
}

/// Distance (metres) from a polygon's edge within which a point counts as on it.
const ON_EDGE_M: f64 = 0.5;

/// An area on the ground: a circle, or a polygon with optional holes.
#[derive(Clone, Debug, PartialEq)]
pub enum Area {
    Circle {
        center: LonLat,
        radius_m: f64,
    },
    /// First ring outer, the rest holes; each ring closed.
    Polygon {
        rings: Vec<Vec<LonLat>>,
    },
}

impl Area {
    /// Whether `p` is inside, or within `tolerance_m` of, the area. The tolerance is the fix's
    /// accuracy: a fix that may be inside counts as inside.
    pub fn contains(&self, p: LonLat, tolerance_m: f64) -> bool {
        self.contains_at(&LocalFrame::at(p), tolerance_m)
    }

    /// [`Area::contains`] for the origin of `frame`, which the caller may reuse across tests of
    /// one position (a frame costs a cosine).
    pub fn contains_at(&self, frame: &LocalFrame, tolerance_m: f64) -> bool {
        let p = frame.origin;
        match self {
            Area::Circle { center, radius_m } => {
                frame.distance_m(*center) <= radius_m + tolerance_m
            }
            Area::Polygon { rings } => {
                if point_in_rings(p, rings) {
                    return true;
                }
                // A point on the boundary is inside, whichever edge it is on (the even-odd
                // rule alone decides edges one way on one side and the other way opposite).
                let tolerance_m = tolerance_m.max(ON_EDGE_M);
                rings.iter().any(|ring| {
                    ring.windows(2)
                        .any(|w| frame.distance_to_segment_m(w[0], w[1]) <= tolerance_m)
                })
            }
        }
    }

    /// Bounding box in degrees, grown by `margin_m`.
    pub fn envelope(&self, margin_m: f64) -> AABB<[f64; 2]> {
        match self {
            Area::Circle { center, radius_m } => {
                LocalFrame::at(*center).envelope(radius_m + margin_m)
            }
            Area::Polygon { rings } => {
                let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
                for p in rings.iter().flatten() {
                    for i in 0..2 {
                        lo[i] = lo[i].min(p[i]);
                        hi[i] = hi[i].max(p[i]);
                    }
                }
                let mid_lat = (lo[1] + hi[1]) / 2.0;
                let grow = LocalFrame::at([lo[0], mid_lat]).envelope(margin_m);
                let [dlon, dlat] = [
                    (grow.upper()[0] - grow.lower()[0]) / 2.0,
                    (grow.upper()[1] - grow.lower()[1]) / 2.0,
                ];
                AABB::from_corners([lo[0] - dlon, lo[1] - dlat], [hi[0] + dlon, hi[1] + dlat])
            }
        }
    }
}

/// Even-odd rule over all rings, so holes are handled without knowing which ring is which.
fn point_in_rings(p: LonLat, rings: &[Vec<LonLat>]) -> bool {
    let mut inside = false;
    for ring in rings {
        for w in ring.windows(2) {
            let (a, b) = (w[0], w[1]);
            if (a[1] > p[1]) != (b[1] > p[1]) {
                let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
                if p[0] < x {
                    inside = !inside;
                }
            }
        }
    }
    inside
}

type Indexed = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Largest tolerance (metres) the zone index is built for: accuracy beyond this is capped.
pub const MAX_ZONE_TOLERANCE_M: f64 = 2_000.0;

/// All zones, indexed by their bounding boxes so that finding the zones at a point does not
/// depend on how many zones there are.
#[derive(Debug)]
pub struct ZoneIndex {
    areas: Vec<Area>,
    tree: RTree<Indexed>,
}

impl ZoneIndex {
    /// Zone `i` in the index is `areas[i]`.
    pub fn new(areas: Vec<Area>) -> ZoneIndex {
        let boxes = areas
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let env = a.envelope(MAX_ZONE_TOLERANCE_M);
                GeomWithData::new(Rectangle::from_corners(env.lower(), env.upper()), i as u32)
            })
            .collect();
        ZoneIndex {
            areas,
            tree: RTree::bulk_load(boxes),
        }
    }

    pub fn area(&self, i: u32) -> &Area {
        &self.areas[i as usize]
    }

    pub fn len(&self) -> usize {
        self.areas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    /// Calls `found` with every zone containing `p` within `tolerance_m` (capped at
    /// [`MAX_ZONE_TOLERANCE_M`]).
    pub fn containing(&self, p: LonLat, tolerance_m: f64, mut found: impl FnMut(u32)) {
        let tol = tolerance_m.clamp(0.0, MAX_ZONE_TOLERANCE_M);
        for hit in self.tree.locate_all_at_point(p) {
            if self.areas[hit.data as usize].contains(p, tol) {
                found(hit.data);
            }
        }
    }
}

/// Largest half-width (metres) a corridor query may use; beyond it the index is not consulted
/// and the route is scanned (a corridor of tens of kilometres is not a corridor).
const MAX_INDEXED_RADIUS_M: f64 = 50_000.0;

/// Segments (or boxes) per box at each level of a route's hierarchy.
const FANOUT: usize = 8;

/// A bounding box `[min_lon, min_lat, max_lon, max_lat]` in single precision, rounded outwards
/// so that it always contains what it bounds.
type Box4 = [f32; 4];

fn box_of(points: &[LonLat]) -> Box4 {
    let mut b = [
        f32::INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
    ];
    for p in points {
        b[0] = b[0].min((p[0] as f32).next_down());
        b[1] = b[1].min((p[1] as f32).next_down());
        b[2] = b[2].max((p[0] as f32).next_up());
        b[3] = b[3].max((p[1] as f32).next_up());
    }
    b
}

fn union(boxes: &[Box4]) -> Box4 {
    boxes.iter().fold(
        [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ],
        |a, b| {
            [
                a[0].min(b[0]),
                a[1].min(b[1]),
                a[2].max(b[2]),
                a[3].max(b[3]),
            ]
        },
    )
}

fn intersects(b: &Box4, env: &[f64; 4]) -> bool {
    f64::from(b[0]) <= env[2]
        && f64::from(b[2]) >= env[0]
        && f64::from(b[1]) <= env[3]
        && f64::from(b[3]) >= env[1]
}

/// A route polyline, answering "is this point within r metres of the route?" in time that does
/// not grow with the number of route points: first the segments around the last match, then a
/// hierarchy of bounding boxes over runs of consecutive segments (a route is a chain, so
/// consecutive segments are neighbours on the ground: no general-purpose R-tree is needed, and
/// the boxes take about 2 bytes per point).
#[derive(Debug)]
pub struct Route {
    points: Vec<LonLat>,
    /// `levels[0][i]` bounds segments `i*FANOUT ..`; `levels[k][i]` bounds boxes
    /// `i*FANOUT ..` of level `k-1`. The last level has one box.
    levels: Vec<Vec<Box4>>,
    length_m: f64,
}

impl Route {
    /// A route from at least two positions.
    pub fn new(points: Vec<LonLat>) -> Route {
        assert!(points.len() >= 2, "a route needs at least 2 positions");
        let n_segments = points.len() - 1;
        let mut levels = vec![
            (0..n_segments.div_ceil(FANOUT))
                .map(|i| box_of(&points[i * FANOUT..((i + 1) * FANOUT + 1).min(points.len())]))
                .collect::<Vec<_>>(),
        ];
        while levels.last().expect("one level").len() > 1 {
            let below = levels.last().expect("one level");
            let up = below.chunks(FANOUT).map(union).collect();
            levels.push(up);
        }
        let length_m = points.windows(2).map(|w| haversine_m(w[0], w[1])).sum();
        Route {
            points,
            levels,
            length_m,
        }
    }

    pub fn points(&self) -> &[LonLat] {
        &self.points
    }

    /// The bits of point `i`'s longitude (0 past the end): a cheap read of the route near a
    /// vehicle, used to bring that memory into cache ahead of time.
    pub fn point_bits(&self, i: usize) -> u64 {
        self.points.get(i).map_or(0, |p| p[0].to_bits())
    }

    pub fn length_m(&self) -> f64 {
        self.length_m
    }

    fn segment_count(&self) -> usize {
        self.points.len() - 1
    }

    fn segment(&self, i: usize) -> (LonLat, LonLat) {
        (self.points[i], self.points[i + 1])
    }

    /// Whether `p` is within `radius_m` of the route. `hint` is the segment found last time for
    /// this vehicle: vehicles move along their route, so checking it and its neighbours first
    /// answers most queries without touching the tree; it is updated on success.
    pub fn within(&self, p: LonLat, radius_m: f64, hint: &mut u32) -> bool {
        self.within_at(&LocalFrame::at(p), radius_m, hint)
    }

    /// [`Route::within`] for the origin of `frame`.
    pub fn within_at(&self, frame: &LocalFrame, radius_m: f64, hint: &mut u32) -> bool {
        let p = frame.origin;
        let n = self.segment_count();
        let h = (*hint as usize).min(n - 1);
        // Most likely first: the same segment, the next one, then one back and two ahead.
        for i in [h, h + 1, h.wrapping_sub(1), h + 2] {
            if i >= n {
                continue;
            }
            let (a, b) = self.segment(i);
            if frame.distance_to_segment_m(a, b) <= radius_m {
                *hint = i as u32;
                return true;
            }
        }
        if radius_m > MAX_INDEXED_RADIUS_M {
            return self.distance_m(p) <= radius_m;
        }
        let env = frame.envelope(radius_m);
        let env = [
            env.lower()[0],
            env.lower()[1],
            env.upper()[0],
            env.upper()[1],
        ];
        // Depth-first down the hierarchy; the stack holds (level, box index).
        let top = self.levels.len() - 1;
        let mut stack: Vec<(usize, usize)> =
            (0..self.levels[top].len()).map(|i| (top, i)).collect();
        while let Some((level, i)) = stack.pop() {
            if !intersects(&self.levels[level][i], &env) {
                continue;
            }
            let children = i * FANOUT..((i + 1) * FANOUT);
            if level > 0 {
                let below = self.levels[level - 1].len();
                stack.extend(children.filter(|&c| c < below).map(|c| (level - 1, c)));
                continue;
            }
            for s in children.filter(|&s| s < n) {
                let (a, b) = self.segment(s);
                if frame.distance_to_segment_m(a, b) <= radius_m {
                    *hint = s as u32;
                    return true;
                }
            }
        }
        false
    }

    /// Distance in metres from `p` to the nearest point of the route. Scans every segment: used
    /// for the text of an alarm, not on the hot path.
    pub fn distance_m(&self, p: LonLat) -> f64 {
        let frame = LocalFrame::at(p);
        (0..self.segment_count())
            .map(|i| {
                let (a, b) = self.segment(i);
                frame.distance_to_segment_m(a, b)
            })
            .fold(f64::INFINITY, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINSK: LonLat = [27.5615, 53.9045];
    const BREST: LonLat = [23.6850, 52.0976];

    #[test]
    fn haversine_matches_known_distance() {
        // Minsk to Brest is about 326 km as the crow flies.
        let d = haversine_m(MINSK, BREST);
        assert!((320_000.0..332_000.0).contains(&d), "{d}");
        // The local frame agrees with haversine at short range to well under a metre per km.
        let near = [MINSK[0] + 0.01, MINSK[1] + 0.005];
        assert!((local_distance_m(MINSK, near) - haversine_m(MINSK, near)).abs() < 1.0);
    }

    #[test]
    fn segment_distance() {
        let f = LocalFrame::at([0.0, 0.0]);
        let one_km_deg = 1000.0 / M_PER_DEG;
        // A segment 1 km north of the origin, running east-west.
        let d = f.distance_to_segment_m([-1.0, one_km_deg], [1.0, one_km_deg]);
        assert!((d - 1000.0).abs() < 0.01, "{d}");
        // Beyond the segment's end the distance is to the end point.
        let d = f.distance_to_segment_m([one_km_deg, 0.0], [2.0 * one_km_deg, 0.0]);
        assert!((d - 1000.0).abs() < 0.01, "{d}");
        assert_eq!(f.distance_to_segment_m([0.0, 0.0], [0.0, 0.0]), 0.0);
    }

    #[test]
    fn polygon_with_hole_and_tolerance() {
        let outer = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]];
        let hole = vec![[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]];
        let a = Area::Polygon {
            rings: vec![outer, hole],
        };
        assert!(a.contains([0.2, 0.2], 0.0));
        assert!(!a.contains([0.5, 0.5], 0.0));
        assert!(!a.contains([1.001, 0.5], 0.0));
        // Both edges of a square count as inside, not just one side's.
        assert!(a.contains([0.5, 0.0], 0.0) && a.contains([0.5, 1.0], 0.0));
        assert!(a.contains([0.0, 0.2], 0.0) && a.contains([1.0, 0.2], 0.0));
        // 0.001° of longitude at the equator is about 111 m.
        assert!(a.contains([1.001, 0.5], 150.0));
        let c = Area::Circle {
            center: [10.0, 50.0],
            radius_m: 300.0,
        };
        assert!(c.contains([10.0, 50.002], 0.0));
        assert!(!c.contains([10.0, 50.003], 0.0));
    }

    #[test]
    fn route_index_agrees_with_scan() {
        // A zig-zag of 200 points; compare the indexed answer with the full scan on a grid.
        let pts: Vec<LonLat> = (0..200)
            .map(|i| {
                [
                    20.0 + i as f64 * 0.02,
                    50.0 + if i % 2 == 0 { 0.0 } else { 0.01 },
                ]
            })
            .collect();
        let route = Route::new(pts);
        let mut hint = 0;
        for gx in 0..80 {
            for gy in 0..20 {
                let p = [19.9 + gx as f64 * 0.06, 49.98 + gy as f64 * 0.003];
                for r in [100.0, 1000.0, 3000.0] {
                    let scan = route.distance_m(p) <= r;
                    assert_eq!(route.within(p, r, &mut hint), scan, "{p:?} {r}");
                }
            }
        }
    }

    #[test]
    fn route_hierarchy_agrees_with_scan_on_a_long_winding_route() {
        // 1,500 points (four levels of boxes), a deterministic random walk.
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut p = [30.0, 50.0];
        let mut heading: f64 = 0.0;
        let pts: Vec<LonLat> = (0..1500)
            .map(|_| {
                heading += next() - 0.5;
                p = [p[0] + 0.01 * heading.cos(), p[1] + 0.006 * heading.sin()];
                p
            })
            .collect();
        let route = Route::new(pts.clone());
        assert!(route.levels.len() >= 4);
        for _ in 0..3000 {
            let base = pts[(next() * 1500.0) as usize];
            let q = [
                base[0] + (next() - 0.5) * 0.2,
                base[1] + (next() - 0.5) * 0.1,
            ];
            let r = [50.0, 800.0, 5000.0][(next() * 3.0) as usize];
            // A hint far away, so the hierarchy is what answers.
            let mut hint = ((next() * 1499.0) as u32 + 700) % 1499;
            assert_eq!(
                route.within(q, r, &mut hint),
                route.distance_m(q) <= r,
                "{q:?} {r}"
            );
        }
    }

    #[test]
    fn zone_index_finds_containing_zones() {
        let areas = (0..500)
            .map(|i| Area::Circle {
                center: [20.0 + (i % 50) as f64 * 0.1, 50.0 + (i / 50) as f64 * 0.1],
                radius_m: 500.0,
            })
            .collect();
        let idx = ZoneIndex::new(areas);
        let mut hits = vec![];
        idx.containing([20.1, 50.1], 0.0, |z| hits.push(z));
        assert_eq!(hits, vec![51]);
        hits.clear();
        idx.containing([20.15, 50.15], 0.0, |z| hits.push(z));
        assert!(hits.is_empty());
    }
}
