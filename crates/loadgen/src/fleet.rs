//! The simulated fleet: zones, shared corridors, transits, and each device's stream of
//! reports. Everything is a pure function of the seed and the device's own history, so the
//! baseline can make the very rows the pipeline was sent.

use std::fmt::Write as _;

use model::Timestamp;

/// A small deterministic generator (the supervisor bench's), so every run drives the same fleet.
#[derive(Clone, Copy, Debug)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        let mut l = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
        l.next();
        l
    }
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// Points per corridor, about 1.5 km apart: about 300 km.
pub const ROUTE_POINTS: usize = 200;
/// Simulated time between two reports of a device.
pub const REPORT_EVERY_MS: i64 = 10_000;
/// How far along its route (in route segments) a vehicle moves between two reports: about
/// 70 km/h.
const SEGMENTS_PER_REPORT: f64 = 0.13;
/// Reports in a corridor excursion; the middle ~17 are outside the 1 km corridor, spanning
/// well over the two-minute grace.
const EXCURSION: u8 = 24;
/// The most reports a device can make: its reports must stay in the past (the service refuses
/// reports more than five minutes ahead of its clock) and on its route.
pub const MAX_REPORTS: u32 = 700;

/// What the fleet looks like.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub transits: usize,
    pub zones: usize,
    pub routes: usize,
    /// Share of reports that start a violation.
    pub violations: f64,
    /// When the reports start (each device's first report); sealing is an hour before.
    pub t0_ms: i64,
    /// How devices are named.
    pub ids: Ids,
}

/// How the fleet's devices are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// `D{i}` (HTTP and the native protocol).
    Letter,
    /// A 12-digit terminal phone number, `9` and the index on 11 digits: JT/T 808 names a
    /// device by the BCD phone number in every frame header.
    Phone,
}

/// One report of a device, before it is put on a wire (JSON, JT/T 808 or native).
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub kind: Kind,
    /// Report time, ms since the epoch.
    pub t_ms: i64,
    /// The device's report counter, from 1.
    pub seq: u32,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub speed_kmh: f64,
    pub battery_pct: f64,
}

/// The zones, the corridors, and per device what it needs to report.
#[derive(Debug)]
pub struct Fleet {
    pub shape: Shape,
    zones: Vec<[f64; 2]>,
    routes: Vec<Vec<[f64; 2]>>,
}

/// What a report is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    /// `lock: unlocked` without authorisation: `illegal_opening` at once.
    Opening,
    /// A `wrong_password` event: `unauthorized_action` at once (if none open for this device).
    WrongPassword,
    /// A fix in a corridor excursion: `route_deviation` once two fixes outside span 2 minutes.
    Excursion,
}

/// One device's place in its stream.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    pub index: u32,
    /// Reports made so far.
    pub k: u32,
    excursion: u8,
    start: f64,
    rng: Lcg,
}

impl Fleet {
    pub fn new(shape: Shape) -> Fleet {
        let mut rng = Lcg::new(42);
        // Zones over a 10° × 6° region (about Belarus and its neighbours), as in the bench.
        let zones: Vec<[f64; 2]> = (0..shape.zones)
            .map(|_| [rng.range(22.0, 32.0), rng.range(50.0, 56.0)])
            .collect();
        let routes = (0..shape.routes)
            .map(|r| {
                let mut heading = rng.range(0.0, std::f64::consts::TAU);
                let mut p = zones[r % zones.len()];
                (0..ROUTE_POINTS)
                    .map(|_| {
                        let here = p;
                        heading += rng.range(-0.3, 0.3);
                        p = [p[0] + 0.022 * heading.cos(), p[1] + 0.0135 * heading.sin()];
                        here
                    })
                    .collect()
            })
            .collect();
        Fleet {
            shape,
            zones,
            routes,
        }
    }

    pub fn zone_json(&self, z: usize) -> String {
        let [lon, lat] = self.zones[z];
        let kind = if z.is_multiple_of(5) {
            "office"
        } else {
            "rest_area"
        };
        let radius = 200 + (z * 37) % 1300;
        format!(
            r#"{{"id":"Z{z}","kind":"{kind}","area":{{"type":"Point","coordinates":[{lon:.6},{lat:.6}]}},"radius_m":{radius}}}"#
        )
    }

    /// Transit `i`: device `D{i}`, on corridor `i % routes`, sealed an hour before the first
    /// report, due twelve hours after.
    pub fn transit_json(&self, i: usize) -> String {
        let r = i % self.routes.len();
        let nz = self.zones.len();
        let mut route = String::with_capacity(ROUTE_POINTS * 26);
        for (n, [lon, lat]) in self.routes[r].iter().enumerate() {
            if n > 0 {
                route.push(',');
            }
            let _ = write!(route, "[{lon:.6},{lat:.6}]");
        }
        let sealed = Timestamp::from_unix_ms(self.shape.t0_ms - 3_600_000);
        let deadline = Timestamp::from_unix_ms(self.shape.t0_ms + 12 * 3_600_000);
        let stops: Vec<String> = (0..3)
            .map(|k| format!("\"Z{}\"", (i * 7 + k * 131) % nz))
            .collect();
        format!(
            r#"{{"id":"T{i}","device":"{}","departure":"Z{}","destination":"Z{}","route":{{"type":"LineString","coordinates":[{route}]}},"sealed_at":"{sealed}","deadline":"{deadline}","stop_zones":[{}]}}"#,
            self.device_id(i),
            r % nz,
            (r + nz / 2) % nz,
            stops.join(",")
        )
    }

    /// The id of device `i`.
    pub fn device_id(&self, i: usize) -> String {
        match self.shape.ids {
            Ids::Letter => format!("D{i}"),
            Ids::Phone => format!("9{i:011}"),
        }
    }

    pub fn device(&self, index: u32) -> Device {
        let mut rng = Lcg::new(u64::from(index) + 1);
        Device {
            index,
            k: 0,
            excursion: 0,
            // Far enough from the departure zone that two reports depart.
            start: rng.range(20.0, 100.0),
            rng,
        }
    }

    /// The device's next report, appended to `out` as JSON; says what kind of report it is and
    /// its time (ms). `None` when the device has made all the reports it can.
    pub fn next_report(&self, d: &mut Device, out: &mut String) -> Option<(Kind, i64)> {
        let p = self.next_point(d)?;
        let _ = write!(
            out,
            r#"{{"device":"{}","t":"{}","seq":{},"lat":{:.6},"lon":{:.6},"accuracy_m":{:.1},"speed_kmh":{:.1},"battery_pct":{:.2},"lock":"{}""#,
            self.device_id(d.index as usize),
            Timestamp::from_unix_ms(p.t_ms),
            p.seq,
            p.lat,
            p.lon,
            p.accuracy_m,
            p.speed_kmh,
            p.battery_pct,
            if p.kind == Kind::Opening {
                "unlocked"
            } else {
                "locked"
            },
        );
        if p.kind == Kind::WrongPassword {
            out.push_str(r#","events":["wrong_password"]"#);
        }
        out.push('}');
        Some((p.kind, p.t_ms))
    }

    /// The device's next report. `None` when the device has made all the reports it can.
    pub fn next_point(&self, d: &mut Device) -> Option<Point> {
        if d.k >= MAX_REPORTS {
            return None;
        }
        let k = d.k;
        d.k += 1;
        let mut kind = Kind::Normal;
        let roll = d.rng.next();
        if d.excursion > 0 {
            kind = Kind::Excursion;
        } else if roll < self.shape.violations {
            let which = roll / self.shape.violations;
            kind = if which < 0.5 {
                Kind::Opening
            } else if which < 0.75 {
                Kind::WrongPassword
            } else {
                d.excursion = EXCURSION;
                Kind::Excursion
            };
        }
        let route = &self.routes[d.index as usize % self.routes.len()];
        let pos = (d.start + f64::from(k) * SEGMENTS_PER_REPORT).min((ROUTE_POINTS - 2) as f64);
        let (seg, frac) = (pos as usize, pos.fract());
        let (a, b) = (route[seg], route[seg + 1]);
        let mut lon = a[0] + (b[0] - a[0]) * frac + d.rng.range(-0.0001, 0.0001);
        let mut lat = a[1] + (b[1] - a[1]) * frac + d.rng.range(-0.0001, 0.0001);
        if kind == Kind::Excursion {
            // Drift off sideways and back, about 100 km/h across: never an implausible jump.
            let j = EXCURSION - d.excursion;
            let away = f64::from((j + 1).min(EXCURSION - j).min(10)) * 0.0025;
            lat += away;
            lon += away;
            d.excursion -= 1;
        }
        Some(Point {
            kind,
            t_ms: self.shape.t0_ms + i64::from(k) * REPORT_EVERY_MS + i64::from(d.index % 1000),
            seq: k + 1,
            lat,
            lon,
            accuracy_m: 5.0 + (k % 10) as f64,
            speed_kmh: 60.0 + d.rng.range(0.0, 20.0),
            battery_pct: 90.0 - f64::from(k) * 0.01,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_observations_and_the_stream_is_reproducible() {
        let fleet = Fleet::new(Shape {
            transits: 20,
            zones: 10,
            routes: 3,
            violations: 0.2,
            t0_ms: 1_795_600_000_000,
            ids: Ids::Letter,
        });
        let _: model::Zone = serde_json::from_str(&fleet.zone_json(3)).unwrap();
        let _: model::Transit = serde_json::from_str(&fleet.transit_json(7)).unwrap();
        let stream = |i| {
            let mut d = fleet.device(i);
            let (mut all, mut s) = (Vec::new(), String::new());
            while fleet.next_report(&mut d, &mut s).is_some() {
                let o: model::Observation = serde_json::from_str(&s).unwrap();
                o.validate().unwrap();
                all.push(std::mem::take(&mut s));
            }
            all
        };
        assert_eq!(stream(5).len(), MAX_REPORTS as usize);
        assert_eq!(stream(5), stream(5));
    }
}
