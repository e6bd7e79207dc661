#!/usr/bin/env python3
"""Deterministic generator of realistic sealwatch scenario files.

Trucks drive real corridors (Yiwu -> Ningbo port, Minsk -> Brest on the M1, Mombasa -> Nairobi
and Malaba on the A109/A104, Almaty -> Khorgos, Hong Kong airport -> Lok Ma Chau on Route 3,
Lat Krabang ICD -> Laem Chabang port on Motorway 7) at realistic speeds, stop at traffic lights
in towns, rest in rest areas, and report through a sealing device every 60 or 120 seconds with
realistic GNSS noise: correlated jitter of tens of metres and occasional single outliers of a
few hundred metres to about 2 km, with and without `accuracy_m`.

Each scenario states in its `description` what it shows and which alarms a customs officer
should expect (kind, transit, approximate time). `--check` replays every file with the
`sealwatch` binary and compares the alarms with those expectations.

Usage (from the repository root):

    python3 tools/gen-scenarios/gen.py             # write testdata/scenarios/ and examples/
    python3 tools/gen-scenarios/gen.py --check     # ... then replay and compare (needs
                                                   #     `cargo build -p sealwatch` first)
    python3 tools/gen-scenarios/gen.py --readme    # ... and rewrite examples/README.md from
                                                   #     the actual replay output

Python 3.11, standard library only. Every scenario has its own `random.Random` seeded from its
name, so changing one scenario does not change the others.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
import zlib
from dataclasses import dataclass, field

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# ------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------

EARTH_R = 6_371_008.8
M_PER_DEG = EARTH_R * math.pi / 180.0


def haversine(a, b):
    la1, la2 = math.radians(a[1]), math.radians(b[1])
    dla = la2 - la1
    dlo = math.radians(b[0] - a[0])
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 2 * EARTH_R * math.asin(min(1.0, math.sqrt(h)))


def shift(p, east_m, north_m):
    """`p` moved by metres east and north (local frame; fine for a few kilometres)."""
    lat = p[1] + north_m / M_PER_DEG
    lon = p[0] + east_m / (M_PER_DEG * math.cos(math.radians(p[1])))
    return [lon, lat]


def enu(origin, p):
    """Metres east and north of `origin`."""
    return (
        (p[0] - origin[0]) * M_PER_DEG * math.cos(math.radians(origin[1])),
        (p[1] - origin[1]) * M_PER_DEG,
    )


def bearing(a, b):
    e, n = enu(a, b)
    return (math.degrees(math.atan2(e, n)) + 360.0) % 360.0


def seg_dist(p, a, b):
    """Distance in metres from p to segment a-b (local frame at p)."""
    ax, ay = enu(p, a)
    bx, by = enu(p, b)
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    t = 0.0 if l2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / l2))
    return math.hypot(ax + t * dx, ay + t * dy)


def polyline_dist(p, pts):
    return min(seg_dist(p, pts[i], pts[i + 1]) for i in range(len(pts) - 1))


def rnd(x, n=5):
    return round(x, n)


# ------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------


def ts(s):
    """Epoch seconds to RFC 3339 UTC."""
    return dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text):
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp())


def hhmm(s):
    return dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%H:%MZ")


def day_hhmm(s):
    return dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%d %b %H:%MZ").lstrip("0")


def floor_to(s, step):
    return s - s % step


def ceil_to(s, step):
    return s + (-s) % step


def iso_dur(seconds):
    h, rem = divmod(int(seconds), 3600)
    m = rem // 60
    out = "PT"
    if h:
        out += f"{h}H"
    if m or not h:
        out += f"{m}M"
    return out


# ------------------------------------------------------------------------------------------
# Corridors
# ------------------------------------------------------------------------------------------


def catmull_rom(points, step_m=150.0):
    """Centripetal Catmull-Rom through `points` ([lon, lat]); returns a dense polyline that
    passes through every waypoint, and the index of each waypoint in it."""
    lat0 = sum(p[1] for p in points) / len(points)
    kx = M_PER_DEG * math.cos(math.radians(lat0))
    xy = [(p[0] * kx, p[1] * M_PER_DEG) for p in points]
    ext = [(2 * xy[0][0] - xy[1][0], 2 * xy[0][1] - xy[1][1])] + xy + [
        (2 * xy[-1][0] - xy[-2][0], 2 * xy[-1][1] - xy[-2][1])
    ]
    out, idx = [], []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]

        def tj(ti, a, b):
            return ti + max(1e-6, math.hypot(b[0] - a[0], b[1] - a[1])) ** 0.5

        t0 = 0.0
        t1 = tj(t0, p0, p1)
        t2 = tj(t1, p1, p2)
        t3 = tj(t2, p2, p3)
        n = max(2, int(math.hypot(p2[0] - p1[0], p2[1] - p1[1]) / step_m))
        idx.append(len(out))
        for k in range(n):
            t = t1 + (t2 - t1) * k / n

            def lerp(a, b, ta, tb):
                if tb == ta:
                    return a
                return (
                    (tb - t) / (tb - ta) * a[0] + (t - ta) / (tb - ta) * b[0],
                    (tb - t) / (tb - ta) * a[1] + (t - ta) / (tb - ta) * b[1],
                )

            a1 = lerp(p0, p1, t0, t1)
            a2 = lerp(p1, p2, t1, t2)
            a3 = lerp(p2, p3, t2, t3)
            b1 = lerp(a1, a2, t0, t2)
            b2 = lerp(a2, a3, t1, t3)
            c = lerp(b1, b2, t1, t2)
            out.append([c[0] / kx, c[1] / M_PER_DEG])
    idx.append(len(out))
    out.append([points[-1][0], points[-1][1]])
    return out, idx


@dataclass
class Town:
    name: str
    radius_km: float
    kmh: float
    lights_per_km: float = 0.6


class Corridor:
    """A real road corridor: named waypoints, the towns it passes through (slower, with traffic
    lights), and the cruise speed of trucks on its open road."""

    def __init__(self, key, title, waypoints, towns, cruise_kmh, slow=()):
        self.key = key
        self.title = title
        self.names = [w[0] for w in waypoints]
        self.fine, widx = catmull_rom([[w[1], w[2]] for w in waypoints])
        self.s = [0.0]
        for a, b in zip(self.fine, self.fine[1:]):
            self.s.append(self.s[-1] + haversine(a, b))
        self.length = self.s[-1]
        self.wp_s = {w[0]: self.s[i] for w, i in zip(waypoints, widx)}
        self.towns = []
        for t in towns:
            c = self.wp_s[t.name]
            self.towns.append((max(0.0, c - t.radius_km * 1000), min(self.length, c + t.radius_km * 1000), t))
        # Extra slow stretches: (from waypoint, km offset, length km, km/h).
        self.slow = []
        for name, off_km, len_km, kmh in slow:
            a = self.wp_s[name] + off_km * 1000
            self.slow.append((a, a + len_km * 1000, kmh))
        self.cruise_kmh = cruise_kmh

    def km(self, name, offset_km=0.0):
        """Corridor position (metres) of a waypoint, plus an offset in km."""
        return self.wp_s[name] + offset_km * 1000.0

    def at(self, s):
        s = max(0.0, min(self.length, s))
        i = max(0, min(len(self.s) - 2, bisect.bisect_right(self.s, s) - 1))
        a, b = self.fine[i], self.fine[i + 1]
        seg = self.s[i + 1] - self.s[i]
        f = 0.0 if seg <= 0 else (s - self.s[i]) / seg
        return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f]

    def heading(self, s):
        return bearing(self.at(s - 60), self.at(s + 60))

    def beside(self, s, lateral_m):
        """The point `lateral_m` metres to the left (positive) or right (negative) of the road."""
        h = math.radians(self.heading(s))
        # Left of heading h is h - 90 degrees.
        e = -math.cos(h) * lateral_m
        n = math.sin(h) * lateral_m
        return shift(self.at(s), e, n)

    def route(self, n=200, s_from=0.0, s_to=None):
        s_to = self.length if s_to is None else s_to
        n = max(2, min(n, int((s_to - s_from) / 400) + 2))
        return [[rnd(p[0]), rnd(p[1])] for p in (self.at(s_from + (s_to - s_from) * i / (n - 1)) for i in range(n))]

    def town_at(self, s):
        for a, b, t in self.towns:
            if a <= s <= b:
                return t
        return None

    def limit_kmh(self, s):
        lim = None
        t = self.town_at(s)
        if t:
            lim = t.kmh
        for a, b, kmh in self.slow:
            if a <= s <= b:
                lim = kmh if lim is None else min(lim, kmh)
        return lim


YIWU_NINGBO = Corridor(
    "yiwu-ningbo",
    "Yiwu -> Ningbo (Beilun port), G1512 Ningbo-Jinhua expressway",
    [
        ("Yiwu port", 120.0350, 29.3330),
        ("Yiwu north", 120.1000, 29.3420),
        ("Yiwu east", 120.1800, 29.3120),
        ("Dongyang", 120.2500, 29.3000),
        ("Dongyang east", 120.3800, 29.3600),
        ("Huzhen", 120.5200, 29.4400),
        ("Shengzhou west", 120.6600, 29.5200),
        ("Shengzhou", 120.8000, 29.5700),
        ("Xinchang", 120.9000, 29.5100),
        ("Xinchang east", 121.0200, 29.5500),
        ("Ninghai north", 121.1400, 29.6200),
        ("Xikou", 121.2500, 29.6700),
        ("Fenghua", 121.4000, 29.6600),
        ("Ningbo south", 121.5200, 29.7800),
        ("Ningbo east", 121.6600, 29.8600),
        ("Beilun port", 121.8600, 29.9300),
    ],
    [Town("Yiwu port", 6, 45, 0.7), Town("Beilun port", 5, 45, 0.7)],
    cruise_kmh=80,
)

MINSK_BREST = Corridor(
    "minsk-brest",
    "Minsk (Kolyadichi) -> Brest (Kozlovichi), M1/E30",
    [
        ("Kolyadichi", 27.6000, 53.8250),
        ("Minsk ring", 27.4400, 53.8450),
        ("Minsk south-west", 27.3000, 53.7700),
        ("Dzerzhinsk", 27.1500, 53.6900),
        ("Negoreloe", 26.9500, 53.5800),
        ("Stolbtsy", 26.7400, 53.4800),
        ("Mir junction", 26.5200, 53.3600),
        ("Novaya Mysh", 26.2800, 53.2200),
        ("Baranovichi", 26.0500, 53.1200),
        ("Byten junction", 25.8000, 52.9800),
        ("Kossovo junction", 25.5600, 52.8400),
        ("Ivatsevichi", 25.3400, 52.7200),
        ("Bereza", 24.9800, 52.5400),
        ("Zapolye", 24.6800, 52.3800),
        ("Kobrin", 24.3800, 52.2300),
        ("Zhabinka", 24.0300, 52.2000),
        ("Brest east", 23.8500, 52.1200),
        ("Kozlovichi", 23.7800, 52.0700),
    ],
    [Town("Kolyadichi", 8, 50, 0.8), Town("Kozlovichi", 7, 50, 0.6)],
    cruise_kmh=82,
)

MOMBASA_WAYPOINTS = [
    ("Kilindini", 39.6400, -4.0450),
    ("Changamwe", 39.6250, -4.0200),
    ("Miritini", 39.5700, -3.9900),
    ("Mazeras", 39.5300, -3.9600),
    ("Mariakani", 39.4700, -3.8600),
    ("Samburu", 39.2700, -3.7800),
    ("Mackinnon Road", 39.0400, -3.7300),
    ("Maungu", 38.7500, -3.5600),
    ("Voi", 38.5600, -3.3900),
    ("Tsavo river", 38.4700, -2.9900),
    ("Mtito Andei", 38.1700, -2.6900),
    ("Kibwezi", 37.9700, -2.4200),
    ("Makindu", 37.8200, -2.2800),
    ("Emali", 37.4700, -2.0800),
    ("Sultan Hamud", 37.3800, -2.0200),
    ("Salama", 37.2500, -1.8800),
    ("Athi River", 36.9800, -1.4600),
]

MOMBASA_TOWNS = [
    Town("Kilindini", 9, 35, 0.8),
    Town("Mariakani", 2, 50, 0.3),
    Town("Voi", 2.5, 50, 0.4),
    Town("Mtito Andei", 1.5, 50, 0.3),
    Town("Kibwezi", 1.5, 50, 0.3),
    Town("Emali", 1.5, 50, 0.3),
    Town("Athi River", 4, 40, 0.6),
]

MOMBASA_NAIROBI = Corridor(
    "mombasa-nairobi",
    "Mombasa (Kilindini) -> Nairobi ICD (Embakasi), A109",
    MOMBASA_WAYPOINTS + [("Mlolongo", 36.9400, -1.3900), ("Nairobi ICD", 36.8950, -1.3250)],
    MOMBASA_TOWNS + [Town("Mlolongo", 3, 35, 0.6), Town("Nairobi ICD", 3, 30, 0.6)],
    cruise_kmh=68,
    slow=[("Mazeras", -2, 6, 45)],
)

MOMBASA_MALABA = Corridor(
    "mombasa-malaba",
    "Mombasa (Kilindini) -> Malaba border, A109 and A104 (Northern Corridor)",
    MOMBASA_WAYPOINTS
    + [
        ("Mlolongo", 36.9400, -1.3900),
        ("Southern bypass", 36.8100, -1.3400),
        ("Kikuyu", 36.6600, -1.2500),
        ("Limuru", 36.6400, -1.1100),
        ("Kinale", 36.5600, -0.9300),
        ("Naivasha", 36.4300, -0.7200),
        ("Gilgil", 36.3200, -0.5000),
        ("Nakuru", 36.0700, -0.2900),
        ("Salgaa", 35.8600, -0.2200),
        ("Mau Summit", 35.6800, -0.1700),
        ("Timboroa", 35.5400, 0.0700),
        ("Burnt Forest", 35.4300, 0.2100),
        ("Eldoret", 35.2700, 0.5100),
        ("Turbo", 35.0500, 0.6300),
        ("Webuye", 34.7700, 0.6100),
        ("Bungoma", 34.5600, 0.5700),
        ("Malaba", 34.2800, 0.6300),
    ],
    MOMBASA_TOWNS
    + [
        Town("Mlolongo", 3, 35, 0.6),
        Town("Naivasha", 2, 50, 0.3),
        Town("Nakuru", 4, 40, 0.6),
        Town("Eldoret", 4, 40, 0.6),
        Town("Webuye", 1.5, 50, 0.3),
        Town("Bungoma", 2, 45, 0.4),
        Town("Malaba", 3, 30, 0.3),
    ],
    cruise_kmh=66,
    slow=[("Mazeras", -2, 6, 45), ("Limuru", 2, 22, 35), ("Mau Summit", -12, 14, 40)],
)

ALMATY_KHORGOS = Corridor(
    "almaty-khorgos",
    "Almaty -> Khorgos (Nur Zholy border post), A351/E40",
    [
        ("Almaty terminal", 77.0500, 43.3300),
        ("Talgar", 77.2400, 43.3100),
        ("Esik", 77.4500, 43.3600),
        ("Turgen", 77.6000, 43.4000),
        ("Baiseit", 77.8500, 43.5000),
        ("Shelek", 78.2500, 43.5900),
        ("Shelek east", 78.6000, 43.7000),
        ("Kokpek turn", 78.9500, 43.8200),
        ("Chundzha turn", 79.3000, 43.9500),
        ("Koktal", 79.7300, 44.1200),
        ("Zharkent", 80.0000, 44.1600),
        ("Khorgos west", 80.2500, 44.2000),
        ("Nur Zholy", 80.4000, 44.2100),
    ],
    [
        Town("Almaty terminal", 5, 50, 0.6),
        Town("Talgar", 2, 50, 0.5),
        Town("Esik", 2, 50, 0.5),
        Town("Shelek", 2, 50, 0.4),
        Town("Zharkent", 3, 50, 0.4),
        Town("Nur Zholy", 2, 30, 0.2),
    ],
    cruise_kmh=80,
)

NINGBO_YIWU = Corridor(
    "ningbo-yiwu",
    "Ningbo (Beilun port) -> Yiwu, G1512 Ningbo-Jinhua expressway",
    [("Beilun port", 121.8600, 29.9300), ("Ningbo east", 121.6600, 29.8600), ("Ningbo south", 121.5200, 29.7800),
     ("Fenghua", 121.4000, 29.6600), ("Xikou", 121.2500, 29.6700), ("Ninghai north", 121.1400, 29.6200),
     ("Xinchang east", 121.0200, 29.5500), ("Xinchang", 120.9000, 29.5100), ("Shengzhou", 120.8000, 29.5700),
     ("Shengzhou west", 120.6600, 29.5200), ("Huzhen", 120.5200, 29.4400), ("Dongyang east", 120.3800, 29.3600),
     ("Dongyang", 120.2500, 29.3000), ("Yiwu east", 120.1800, 29.3120), ("Yiwu north", 120.1000, 29.3420),
     ("Yiwu port", 120.0350, 29.3330)],
    [Town("Beilun port", 5, 45, 0.7), Town("Yiwu port", 6, 45, 0.7)],
    cruise_kmh=80,
)

# Air-to-road transhipment under Hong Kong's Intermodal Transhipment Facilitation Scheme (ITFS):
# from the air cargo terminals at Chek Lap Kok along the North Lantau Highway, over the Lantau
# Link (Kap Shui Mun and Tsing Ma bridges), Ting Kau Bridge and through Tai Lam Tunnel (Route 3),
# then the San Tin Highway to the Lok Ma Chau control point (open 24 hours). Left-hand traffic;
# goods vehicles are limited to 70 km/h on expressways.
HKIA_LOK_MA_CHAU = Corridor(
    "hkia-lok-ma-chau",
    "Hong Kong International Airport (air cargo) -> Lok Ma Chau control point, Route 8 and Route 3",
    [
        ("HKIA SuperTerminal 1", 113.93000, 22.29900),
        ("HKIA cargo exit", 113.94050, 22.30030),
        ("Tung Chung", 113.95600, 22.29520),
        ("Tai Ho", 113.98000, 22.30100),
        ("Siu Ho Wan", 114.00000, 22.31000),
        ("Sunny Bay", 114.02600, 22.33000),
        ("Yam O", 114.04000, 22.34400),
        ("Kap Shui Mun Bridge", 114.05100, 22.35000),
        ("Ma Wan", 114.06200, 22.35200),
        ("Tsing Ma Bridge", 114.07420, 22.35170),
        ("Tsing Yi north-west", 114.08600, 22.35700),
        ("Ting Kau Bridge", 114.08000, 22.36670),
        ("Tai Lam Tunnel south", 114.07100, 22.38000),
        ("Tai Lam Tunnel north", 114.05900, 22.41500),
        ("Tai Tong", 114.05000, 22.43200),
        ("Au Tau", 114.04250, 22.44700),
        ("Ngau Tam Mei", 114.05400, 22.46600),
        ("Pok Wai", 114.06250, 22.48300),
        ("San Tin", 114.06900, 22.49650),
        ("Lok Ma Chau Control Point", 114.07400, 22.50940),
    ],
    [Town("HKIA SuperTerminal 1", 1.8, 40, 0.5), Town("Lok Ma Chau Control Point", 1.0, 30, 0.3)],
    cruise_kmh=64,
)

# Thai Customs' e-lock for goods moved under customs control between the Lat Krabang inland
# container depot (ICD) and Laem Chabang port: Motorway 7 (Bangkok - Chon Buri), past
# Suvarnabhumi airport, over the Bang Pakong river and east of Chon Buri to the Laem Chabang
# interchange, then the port access road. Rest areas as the Department of Highways numbers them:
# Lat Krabang rest stop km 21.7, Bang Pakong service area km 49.3, Nong Ri rest stop km 72.5.
BANGKOK_LAEM_CHABANG = Corridor(
    "bangkok-laem-chabang",
    "Bangkok (Lat Krabang ICD) -> Laem Chabang port, Motorway 7",
    [
        ("ICD Lat Krabang", 100.75300, 13.74300),
        ("Rom Klao interchange", 100.74700, 13.73000),
        ("Lat Krabang", 100.77500, 13.72450),
        ("Suvarnabhumi north", 100.80000, 13.71600),
        ("Lat Krabang interchange", 100.82600, 13.70500),
        ("Bang Sao Thong", 100.86000, 13.67500),
        ("Bang Bo", 100.89500, 13.63800),
        ("Bang Wua", 100.93300, 13.60200),
        ("Bang Pakong", 100.98000, 13.55600),
        ("Bang Pakong river", 100.99600, 13.54200),
        ("Route 314 junction", 101.01500, 13.50500),
        ("Amata Nakorn", 101.03800, 13.42500),
        ("Nong Ri", 101.04500, 13.34500),
        ("Chon Buri bypass", 101.03300, 13.28000),
        ("Bang Phra", 101.00300, 13.20500),
        ("Si Racha east", 100.98500, 13.16000),
        ("Laem Chabang interchange", 100.96000, 13.10500),
        ("Port access road", 100.93300, 13.09500),
        ("Laem Chabang port", 100.89600, 13.08300),
    ],
    [Town("ICD Lat Krabang", 2.5, 40, 0.5), Town("Laem Chabang port", 3.5, 45, 0.4)],
    cruise_kmh=78,
)

CORRIDORS = [YIWU_NINGBO, NINGBO_YIWU, MINSK_BREST, MOMBASA_NAIROBI, MOMBASA_MALABA, ALMATY_KHORGOS,
             HKIA_LOK_MA_CHAU, BANGKOK_LAEM_CHABANG]

# ------------------------------------------------------------------------------------------
# Zones
# ------------------------------------------------------------------------------------------


def circle(zid, kind, center, radius_m, name=None):
    z = {"id": zid, "kind": kind, "area": {"type": "Point", "coordinates": [rnd(center[0]), rnd(center[1])]}, "radius_m": radius_m}
    if name:
        z["name"] = name
    return z


def rect(zid, kind, center, w_m, h_m, name=None):
    a = shift(center, -w_m / 2, -h_m / 2)
    b = shift(center, w_m / 2, h_m / 2)
    ring = [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]], [a[0], a[1]]]
    z = {"id": zid, "kind": kind, "area": {"type": "Polygon", "coordinates": [[[rnd(x), rnd(y)] for x, y in ring]]}}
    if name:
        z["name"] = name
    return z


def zone_center(z):
    if z["area"]["type"] == "Point":
        return list(z["area"]["coordinates"])
    ring = z["area"]["coordinates"][0][:-1]
    return [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]


@dataclass
class Place:
    """A zone beside the road at corridor position `s`."""

    zone: dict
    s: float
    spot: list  # where a truck parks inside it


def roadside_zone(c: Corridor, zid, kind, s, lateral_m, radius_m, name, rng):
    center = c.beside(s, lateral_m)
    z = circle(zid, kind, center, radius_m, name)
    spot = shift(center, rng.uniform(-0.2, 0.2) * radius_m, rng.uniform(-0.2, 0.2) * radius_m)
    return Place(z, s, spot)


def end_office(c: Corridor, zid, at_start, w_m, h_m, name, rng, polygon=True, radius_m=1200):
    s = 0.0 if at_start else c.length
    center = c.at(s)
    z = rect(zid, "office", center, w_m, h_m, name) if polygon else circle(zid, "office", center, radius_m, name)
    lim = min(w_m, h_m) / 2 if polygon else radius_m / 2
    spot = shift(center, rng.uniform(-0.25, 0.25) * lim, rng.uniform(-0.25, 0.25) * lim)
    return Place(z, s, spot)


# ------------------------------------------------------------------------------------------
# Paths and motion
# ------------------------------------------------------------------------------------------


@dataclass
class Stop:
    seconds: int
    label: str


class Path:
    """What one truck actually drives: the road with its bends (a lateral offset from the
    corridor's centre line), detours, and spurs into parkings. Built leg by leg."""

    STEP = 100.0

    def __init__(self, c: Corridor, rng: random.Random, meander_m=110.0):
        self.c = c
        self.pts = []
        self.cap = []  # km/h cap from this point to the next (None: open road)
        self.sc = []  # corridor position of the point
        self.stops: dict[int, list[Stop]] = {}
        self.marks: dict[str, int] = {}
        self.s = 0.0
        self.bumps = []  # (s_a, s_b, lateral_m, ramp_m, kmh)
        self.jams = []  # (s_a, s_b): stop-and-go traffic
        self.last_light = -1e9
        ph = [rng.uniform(0, 2 * math.pi) for _ in range(3)]
        lam = [rng.uniform(7000, 12000), rng.uniform(2000, 3500), rng.uniform(15000, 30000)]
        amp = [meander_m * 0.55, meander_m * 0.25, meander_m * 0.45]
        self._meander = lambda s: sum(a * math.sin(2 * math.pi * s / l + p) for a, l, p in zip(amp, lam, ph))
        self.rng = rng

    def offset(self, s):
        taper = max(0.0, min(1.0, s / 2500.0, (self.c.length - s) / 2500.0))
        off = self._meander(s) * taper
        for a, b, lat, ramp, _ in self.bumps:
            if a - ramp <= s <= b + ramp:
                if s < a:
                    f = (s - (a - ramp)) / ramp
                elif s > b:
                    f = ((b + ramp) - s) / ramp
                else:
                    f = 1.0
                f = 0.5 - 0.5 * math.cos(math.pi * f)
                off += lat * f
        return off

    def jam(self, s_a, s_b, kmh=14):
        """Stop-and-go traffic between two corridor positions."""
        self.jams.append((s_a, s_b))
        self.bumps.append((s_a, s_b, 0.0, 1.0, kmh))

    def bump_kmh(self, s):
        lim = None
        for a, b, _, ramp, kmh in self.bumps:
            if kmh and a - ramp <= s <= b + ramp:
                lim = kmh if lim is None else min(lim, kmh)
        return lim

    def road_point(self, s):
        return self.c.beside(s, self.offset(s))

    def _add(self, p, cap, s):
        if self.pts and haversine(self.pts[-1], p) < 1.0:
            self.cap[-1] = cap
            return
        self.pts.append(p)
        self.cap.append(cap)
        self.sc.append(s)

    def mark(self, label):
        self.marks[label] = len(self.pts) - 1

    def stop(self, seconds, label):
        self.stops.setdefault(len(self.pts) - 1, []).append(Stop(int(seconds), label))
        self.mark(label)

    def line_to(self, p, kmh, step=40.0):
        a = self.pts[-1]
        d = haversine(a, p)
        n = max(1, int(d / step))
        if self.cap:
            self.cap[-1] = kmh
        for k in range(1, n + 1):
            f = k / n
            self._add([a[0] + (p[0] - a[0]) * f, a[1] + (p[1] - a[1]) * f], kmh, self.s)

    def start(self, spot, s=0.0):
        self.s = s
        self._add(list(spot), 15, s)

    def join_road(self, kmh=20):
        self.line_to(self.road_point(self.s), kmh)

    def detour(self, s_a, s_b, lateral_m, ramp_m=1500.0, kmh=None):
        """A stretch where the truck drives `lateral_m` beside the corridor (positive: left)."""
        self.bumps.append((s_a, s_b, lateral_m, ramp_m, kmh))

    def drive(self, s_to, lights=True):
        """Along the road from the current corridor position to `s_to`, with traffic lights
        in towns."""
        s = self.s
        while s < s_to - 1e-6:
            s_next = min(s_to, s + self.STEP)
            cap = self.c.limit_kmh(s)
            bk = self.bump_kmh(s)
            if bk is not None:
                cap = bk if cap is None else min(cap, bk)
            if self.cap:
                self.cap[-1] = cap
            self._add(self.road_point(s_next), cap, s_next)
            t = self.c.town_at(s_next)
            jam = any(a <= s_next <= b for a, b in self.jams)
            if jam and s_next - self.last_light >= 300 and self.rng.random() < 0.35:
                # Stop-and-go in a traffic jam: short halts, never three minutes in one place.
                self.stop(int(self.rng.uniform(30, 120)), "")
                self.last_light = s_next
            elif lights and t and s_next - self.last_light >= 500 and self.rng.random() < t.lights_per_km * self.STEP / 1000.0:
                # A red light or a junction: well under the 3 minutes that make a stop.
                self.stop(int(self.rng.uniform(20, 150)), "")
                self.last_light = s_next
            s = s_next
        self.s = s_to

    def visit(self, spot, seconds, label, kmh=20):
        """Leave the road into a parking (or a side road) at `spot`, stay, come back."""
        here = self.pts[-1]
        self.line_to(spot, kmh)
        self.stop(seconds, label)
        self.line_to(here, kmh)

    def excursion(self, via, spot, seconds, label, kmh=25):
        """Leave the road along the streets through `via` to `spot`, stay, and come back the
        same way."""
        here = self.pts[-1]
        for q in via:
            self.line_to(q, kmh)
        self.line_to(spot, kmh)
        self.stop(seconds, label)
        for q in reversed(via):
            self.line_to(q, kmh)
        self.line_to(here, kmh)

    def arrive(self, spot, seconds, label="destination"):
        self.line_to(spot, 20)
        self.stop(seconds, label)


@dataclass
class State:
    t: int
    lon: float
    lat: float
    v: float  # m/s
    heading: float
    stopped_for: int  # seconds stationary so far
    stop: str | None  # label of the stop in progress
    s: float  # corridor position


@dataclass
class Sim:
    reports: list
    marks: dict  # label -> time the truck reached that point (first time)
    stops: dict  # label -> (t_arrive, t_leave)
    end: int


def simulate(path: Path, t0, rng, cruise_kmh=None, interval=60, parked_interval=None, accel=0.5, decel=0.9):
    """Drives `path` second by second from `t0` and samples the device's reports: every
    `interval` seconds, every `parked_interval` seconds once stationary for 5 minutes (devices
    save battery when parked), and at once when the vehicle moves off again."""
    pts = path.pts
    u = [0.0]
    for a, b in zip(pts, pts[1:]):
        u.append(u[-1] + haversine(a, b))
    cruise = (cruise_kmh or path.c.cruise_kmh) / 3.6
    ph1, ph2 = rng.uniform(0, 6.3), rng.uniform(0, 6.3)

    def cap_at(i, pos):
        c = path.cap[i]
        if c is None:
            return cruise * (1 + 0.06 * math.sin(pos / 17000 * 6.283 + ph1) + 0.03 * math.sin(pos / 5300 * 6.283 + ph2))
        return c / 3.6

    stop_idx = sorted(path.stops)
    stop_u = [u[i] for i in stop_idx]
    mark_at = {}
    for label, i in path.marks.items():
        mark_at.setdefault(i, []).append(label)

    reports, marks, stops = [], {}, {}
    t, pos, v, i = t0, 0.0, 0.0, 0
    k = 0  # next stop in stop_idx
    next_report = t0 + rng.randint(0, min(interval, 59))
    stationary = 0
    parked_mode = False
    current_stop = None

    def sample():
        nonlocal next_report, parked_mode
        a, b = pts[i], pts[min(i + 1, len(pts) - 1)]
        seg = u[min(i + 1, len(u) - 1)] - u[i]
        f = 0.0 if seg <= 0 else (pos - u[i]) / seg
        lon, lat = a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        hd = bearing(a, b) if seg > 0 else (reports[-1].heading if reports else 0.0)
        if v == 0 and reports and reports[-1].v == 0:
            hd = reports[-1].heading
        reports.append(State(t, lon, lat, v, hd, stationary, current_stop, path.sc[i]))
        parked_mode = bool(parked_interval) and stationary >= 300
        next_report = t + (parked_interval if parked_mode else interval)

    def tick():
        nonlocal t
        t += 1
        if t >= next_report:
            sample()

    for lbl in mark_at.get(0, []):
        marks.setdefault(lbl, t)
    while True:
        # Stops at the current point.
        if k < len(stop_idx) and stop_idx[k] == i and pos >= stop_u[k] - 0.5:
            for st in path.stops[stop_idx[k]]:
                v = 0.0
                current_stop = st.label or None
                t_in = t
                for _ in range(st.seconds):
                    stationary += 1
                    tick()
                if st.label:
                    stops.setdefault(st.label, (t_in, t))
            k += 1
            current_stop = None
            if parked_mode:
                # The device wakes up on motion.
                next_report = t + 1
            continue
        if i >= len(pts) - 1:
            break
        # Speed: the cap here, braking for slower stretches and the next stop ahead.
        vmax = cap_at(i, pos)
        j, ahead = i + 1, u[i + 1] - pos
        while j < len(pts) - 1 and ahead < 400:
            vmax = min(vmax, math.sqrt(cap_at(j, pos) ** 2 + 2 * decel * ahead))
            j += 1
            ahead = u[j] - pos
        if k < len(stop_idx):
            d = stop_u[k] - pos
            vmax = min(vmax, math.sqrt(2 * decel * max(0.0, d)) + 0.3)
        end_d = u[-1] - pos
        vmax = min(vmax, math.sqrt(2 * decel * max(0.0, end_d)) + 0.3)
        v = min(vmax, v + accel)
        pos += v
        if v > 0.3:
            stationary = 0
        # Snap to a stop or the end point when reached.
        if k < len(stop_idx) and pos >= stop_u[k]:
            pos = stop_u[k]
        if pos >= u[-1]:
            pos = u[-1]
        while i < len(pts) - 1 and pos >= u[i + 1]:
            i += 1
            for lbl in mark_at.get(i, []):
                marks.setdefault(lbl, t)
        if k < len(stop_idx) and pos >= stop_u[k] - 0.5:
            v = 0.0
        tick()
    return Sim(reports, marks, stops, t)


# ------------------------------------------------------------------------------------------
# Devices and their reports
# ------------------------------------------------------------------------------------------


@dataclass
class Device:
    id: str
    kind: str = "elock"  # elock | eseal | container
    accuracy: bool = False  # reports accuracy_m
    seq: int = 1000
    battery: float = 90.0
    drain_per_h: float = 0.4
    temperature: tuple | None = None  # (mean, sd) for a reefer; None: not reported
    humidity: tuple | None = None
    shock: bool = False
    fuel: tuple | None = None  # (start %, consumption % per 100 km)
    sigma_m: float = 7.0  # per-report GNSS noise innovation (AR(1), so ~10-15 m typical)


@dataclass
class Outlier:
    t: int  # the report at or after this time becomes an outlier
    dist_m: float
    acc: str  # "none": no accuracy_m; "big": accuracy_m about the error; "small": a normal-looking accuracy
    bearing: float


def plan_outliers(sim: Sim, rng, n, c: Corridor, keep_clear=()):
    """`n` single outliers at random reports, apart from each other, away from both ends of
    the journey and from the (t_a, t_b) windows in `keep_clear`."""
    eligible = []
    for idx, r in enumerate(sim.reports):
        if r.s < 6000 or r.s > c.length - 6000:
            continue
        if any(a - 600 <= r.t <= b + 600 for a, b in keep_clear):
            continue
        eligible.append(idx)
    out = []
    chosen = []
    kinds = ["none", "big", "small"]
    for _ in range(n * 20):
        if len(out) >= n or not eligible:
            break
        idx = rng.choice(eligible)
        if any(abs(idx - c2) < 10 for c2 in chosen):
            continue
        chosen.append(idx)
        kind = kinds[len(out) % 3]
        d = rng.uniform(300, 900) if kind == "small" else rng.uniform(300, 2000)
        out.append(Outlier(sim.reports[idx].t, d, kind, rng.uniform(0, 360)))
    return sorted(out, key=lambda o: o.t)


def observations(sim: Sim, dev: Device, rng, outliers=(), start_t=None):
    """The device's reports for a simulated drive: noise, outliers, seal state, battery,
    sensors and sequence numbers. Returns a list of dicts in contract shape, in time order."""
    out = []
    ex = ey = 0.0
    t_first = sim.reports[0].t if start_t is None else start_t
    outl = {o.t: o for o in outliers}
    fuel = dev.fuel[0] if dev.fuel else None
    last_pos = None
    temp_state = 0.0
    for r in sim.reports:
        ex = 0.7 * ex + rng.gauss(0, dev.sigma_m)
        ey = 0.7 * ey + rng.gauss(0, dev.sigma_m)
        p = shift([r.lon, r.lat], ex, ey)
        acc = None
        if dev.accuracy:
            acc = round(max(3.0, rng.gauss(9 if r.v > 0 else 12, 3)))
        o = outl.get(r.t)
        if o:
            b = math.radians(o.bearing)
            p = shift(p, math.sin(b) * o.dist_m, math.cos(b) * o.dist_m)
            if o.acc == "none":
                acc = None
            elif o.acc == "big":
                acc = int(round(o.dist_m * rng.uniform(0.7, 1.2), -1))
            else:
                acc = round(rng.uniform(8, 25))
        obs = {"device": dev.id, "t": ts(r.t), "lat": rnd(p[1], 6), "lon": rnd(p[0], 6)}
        if acc is not None:
            obs["accuracy_m"] = acc
        speed = 0 if r.v == 0 else max(0, round(r.v * 3.6 + rng.gauss(0, 1.2)))
        obs["speed_kmh"] = speed
        obs["course_deg"] = round(r.heading) % 360
        obs["lock"] = "locked"
        if dev.kind == "eseal":
            obs["rope"] = "intact"
        if dev.kind == "container":
            obs["door"] = "closed"
        hours = (r.t - t_first) / 3600.0
        obs["battery_pct"] = max(1, min(100, round(dev.battery - dev.drain_per_h * hours)))
        if dev.temperature:
            mean, sd = dev.temperature
            temp_state = 0.8 * temp_state + rng.gauss(0, sd)
            obs["temperature_c"] = round(mean + temp_state, 1)
        if dev.humidity:
            mean, sd = dev.humidity
            obs["humidity_pct"] = round(mean + rng.gauss(0, sd))
        if dev.shock:
            base = 0.15 if r.v == 0 else rng.uniform(0.3, 1.4)
            obs["shock_g"] = round(base, 1)
        if dev.fuel is not None:
            if last_pos is not None:
                fuel -= haversine(last_pos, [r.lon, r.lat]) / 1000.0 * dev.fuel[1]
            noise = rng.gauss(0, 0.25 if r.v > 0 else 0.08)
            obs["fuel_pct"] = round(max(0.0, min(100.0, fuel + max(-0.6, min(0.6, noise)))), 1)
        last_pos = [r.lon, r.lat]
        obs["seq"] = dev.seq
        dev.seq += 1
        out.append(obs)
    return out


# ---- report edits (by time window) ---------------------------------------------------------


def in_window(o, a, b):
    t = epoch(o["t"])
    return a <= t < b


def set_fields(obs, a, b, **fields):
    for o in obs:
        if in_window(o, a, b):
            o.update(fields)


def first_at(obs, t, device=None):
    for o in obs:
        if epoch(o["t"]) >= t and (device is None or o["device"] == device):
            return o
    raise ValueError(f"no report at or after {ts(t)}")


def add_events(obs, t, *events, device=None):
    o = first_at(obs, t, device)
    o["events"] = sorted(set(o.get("events", [])) | set(events))
    return epoch(o["t"])


def drop(obs, a, b):
    return [o for o in obs if not in_window(o, a, b)]


def no_fix(obs, a, b):
    """Reports keep coming but without a position: what a jammed or shielded receiver sends."""
    for o in obs:
        if in_window(o, a, b):
            for k in ("lat", "lon", "accuracy_m", "speed_kmh", "course_deg"):
                o.pop(k, None)
            o["fix"] = False


def reorder_keys(o):
    order = [
        "device", "t", "fix", "lat", "lon", "accuracy_m", "speed_kmh", "course_deg", "lock", "rope",
        "housing", "door", "battery_pct", "charging", "temperature_c", "humidity_pct", "shock_g",
        "light_lux", "pressure_hpa", "fuel_pct", "events", "seq",
    ]
    return {k: o[k] for k in order if k in o} | {k: v for k, v in o.items() if k not in order}


def insert_report(obs, device, t, rng, **fields):
    """An extra report at `t`, sent at once by the device because something changed (a lock
    opened or closed): the last report's position with fresh noise, and `fields`. Call
    `renumber` afterwards so the sequence numbers stay in time order."""
    prev = [o for o in obs if o["device"] == device and epoch(o["t"]) <= t]
    base = dict(prev[-1] if prev else first_at(obs, t, device))
    base.pop("events", None)
    base["t"] = ts(t)
    if "lat" in base:
        p = shift([base["lon"], base["lat"]], rng.gauss(0, 6), rng.gauss(0, 6))
        base["lat"], base["lon"] = rnd(p[1], 6), rnd(p[0], 6)
    base.update(fields)
    obs.append(base)
    obs.sort(key=lambda o: (epoch(o["t"]), o["device"]))
    return t


def renumber(obs, device):
    mine = sorted((o for o in obs if o["device"] == device and "seq" in o), key=lambda o: epoch(o["t"]))
    if mine:
        first = min(o["seq"] for o in mine)
        for k, o in enumerate(mine):
            o["seq"] = first + k


def lock_window(obs, device, a, b, rng, **open_fields):
    """The seal is open from `a` to `b`: reports at both changes, and open in between."""
    closed = {k: ("locked" if k == "lock" else "closed") for k in open_fields}
    set_fields(obs, a, b, **open_fields)
    insert_report(obs, device, a, rng, **open_fields)
    insert_report(obs, device, b, rng, **closed)
    renumber(obs, device)


def report_times(obs, device=None):
    return [epoch(o["t"]) for o in obs if device is None or o["device"] == device]


def battery_profile(obs, device, t0, level0, rate_per_h, charging=(), charge_per_h=10.0):
    """Battery by integration: draining at `rate_per_h`, charging at `charge_per_h` during the
    (t_a, t_b) windows in `charging` (reported as `charging: true`)."""
    for o in obs:
        if o["device"] != device:
            continue
        t = epoch(o["t"])
        level = level0
        prev = t0
        marks = sorted({t0, t} | {x for w in charging for x in w if t0 < x < t})
        for a, b in zip(marks, marks[1:]):
            mid = (a + b) / 2
            on = any(ca <= mid < cb for ca, cb in charging)
            level += (charge_per_h if on else -rate_per_h) * (b - a) / 3600.0
        del prev
        o["battery_pct"] = max(1, min(100, math.floor(level)))
        if any(ca <= t < cb for ca, cb in charging):
            o["charging"] = True
        else:
            o.pop("charging", None)


def add_fuel(obs, device, t_a, t_b, delta):
    """Fuel level changes by `delta` percentage points between t_a and t_b (a refuel, or a
    theft when negative), on top of the consumption."""
    for o in obs:
        if o["device"] != device or "fuel_pct" not in o:
            continue
        t = epoch(o["t"])
        if t <= t_a:
            continue
        f = min(1.0, (t - t_a) / max(1, t_b - t_a))
        o["fuel_pct"] = round(max(0.0, min(100.0, o["fuel_pct"] + delta * f)), 1)


def temperature_profile(obs, device, points, rng, sd=0.15):
    """Overrides temperature between the first and last of `points` ((t, °C), linear)."""
    ta, tb = points[0][0], points[-1][0]
    for o in obs:
        if o["device"] != device or "temperature_c" not in o:
            continue
        t = epoch(o["t"])
        if not ta <= t <= tb:
            continue
        for (a, va), (b, vb) in zip(points, points[1:]):
            if a <= t <= b:
                v = va + (vb - va) * (t - a) / max(1, b - a)
                o["temperature_c"] = round(v + rng.gauss(0, sd), 1)
                break


# ------------------------------------------------------------------------------------------
# Zone catalogues (the same zones in every scenario on a corridor)
# ------------------------------------------------------------------------------------------

_CATALOGUES = {}


def zones_of(c: Corridor):
    if c.key in _CATALOGUES:
        return _CATALOGUES[c.key]
    rng = random.Random(zlib.crc32(("zones:" + c.key).encode()))
    Z = {}

    def side(zid, kind, s, lat, r, name):
        Z[zid] = roadside_zone(c, zid, kind, s, lat, r, name, rng)

    if c is NINGBO_YIWU:
        fwd = zones_of(YIWU_NINGBO)
        Z["dep"], Z["dest"] = fwd["dest"], fwd["dep"]
    elif c is YIWU_NINGBO:
        Z["dep"] = end_office(c, "CN-YIWU-PORT", True, 900, 650, "Yiwu railway port customs supervision area", rng)
        Z["dest"] = end_office(c, "CN-NINGBO-BEILUN", False, 2200, 1400, "Ningbo Beilun port customs supervision area", rng)
        side("CN-SA-DONGYANG", "rest_area", c.km("Dongyang", 6), 170, 250, "Dongyang service area, G1512")
        side("CN-SA-SHENGZHOU", "rest_area", c.km("Shengzhou", -8), -170, 250, "Shengzhou service area, G1512")
        side("CN-FUEL-XINCHANG", "fuel", c.km("Xinchang", 5), 120, 150, "Sinopec station, Xinchang")
        side("CN-SA-XIKOU", "rest_area", c.km("Xikou", 3), 160, 250, "Xikou service area, G1512")
        side("CN-CHK-FENGHUA", "checkpoint", c.km("Fenghua", 1), 0, 400, "Fenghua toll station customs checkpoint")
    elif c is MINSK_BREST:
        Z["dep"] = end_office(c, "BY-MINSK-KOLYADICHI", True, 800, 600, "Kolyadichi customs terminal, Minsk", rng)
        Z["dest"] = end_office(c, "BY-BREST-KOZLOVICHI", False, 1200, 900, "Kozlovichi customs terminal and border crossing, Brest", rng)
        side("BY-M1-REST-DZERZHINSK", "rest_area", c.km("Dzerzhinsk", 12), 180, 250, "M1 rest area km 52")
        side("BY-CHK-STOLBTSY", "checkpoint", c.km("Stolbtsy", -3), 60, 300, "Mobile customs group post, Stolbtsy")
        side("BY-M1-FUEL-STOLBTSY", "fuel", c.km("Stolbtsy", 4), -120, 150, "Belorusneft station, M1 km 101")
        side("BY-M1-PARKING-BARANOVICHI", "parking", c.km("Baranovichi", 3), 220, 300, "Guarded truck parking, Baranovichi")
        side("BY-CHK-IVATSEVICHI", "checkpoint", c.km("Ivatsevichi", 0), 70, 300, "Mobile customs group post, Ivatsevichi")
        side("BY-M1-REST-BEREZA", "rest_area", c.km("Bereza", 6), -180, 250, "M1 rest area km 246")
        side("BY-CHK-KOBRIN", "checkpoint", c.km("Kobrin", 2), 60, 300, "Mobile customs group post, Kobrin")
        side("BY-BREST-BUFFER", "parking", c.km("Brest east", -4), 260, 400, "Border queue buffer zone, Brest")
    elif c in (MOMBASA_NAIROBI, MOMBASA_MALABA):
        Z["dep"] = end_office(c, "KE-MSA-KILINDINI", True, 1400, 900, "Port of Mombasa (Kilindini) customs area", rng)
        side("KE-WB-MARIAKANI", "checkpoint", c.km("Mariakani", 1.5), 90, 250, "Mariakani weighbridge")
        side("KE-VOI-TRUCK-PARK", "parking", c.km("Voi", 2), 200, 300, "Voi truck park")
        side("KE-MTITO-TRUCK-PARK", "parking", c.km("Mtito Andei", 0.5), -200, 300, "Mtito Andei truck park")
        side("KE-FUEL-MAKINDU", "fuel", c.km("Makindu", 1), 100, 150, "Fuel station, Makindu")
        side("KE-WB-ATHI-RIVER", "checkpoint", c.km("Athi River", -3), 90, 250, "Athi River weighbridge")
        if c is MOMBASA_NAIROBI:
            Z["dest"] = end_office(c, "KE-NBO-ICD", False, 1500, 1000, "Nairobi Inland Container Depot, Embakasi", rng)
        else:
            side("KE-NAIVASHA-TRUCK-PARK", "parking", c.km("Naivasha", -3), 220, 350, "Naivasha truck park")
            side("KE-WB-GILGIL", "checkpoint", c.km("Gilgil", 2), 90, 250, "Gilgil weighbridge")
            side("KE-FUEL-NAKURU", "fuel", c.km("Nakuru", 5), -110, 150, "Fuel station, Nakuru west")
            side("KE-ELDORET-TRUCK-PARK", "parking", c.km("Eldoret", -4), 200, 300, "Eldoret truck park")
            side("KE-WB-WEBUYE", "checkpoint", c.km("Webuye", 2), 90, 250, "Webuye weighbridge")
            Z["dest"] = end_office(c, "KE-MALABA-OSBP", False, 1200, 800, "Malaba one-stop border post", rng)
    elif c is ALMATY_KHORGOS:
        Z["dep"] = end_office(c, "KZ-ALMATY-TERMINAL", True, 900, 700, "Almaty customs terminal", rng)
        Z["dest"] = end_office(c, "KZ-NUR-ZHOLY", False, 1500, 1000, "Nur Zholy border crossing, Khorgos", rng)
        side("KZ-CHK-TALGAR", "checkpoint", c.km("Talgar", 3), 60, 300, "Customs mobile post, Talgar")
        side("KZ-FUEL-SHELEK", "fuel", c.km("Shelek", 3), 110, 150, "Fuel station, Shelek")
        side("KZ-CHK-SHELEK", "checkpoint", c.km("Shelek", 8), 60, 300, "Customs mobile post, Shelek")
        side("KZ-REST-KOKPEK", "rest_area", c.km("Kokpek turn", 0), 170, 250, "Roadside rest area, Kokpek")
        side("KZ-CHK-KOKTAL", "checkpoint", c.km("Koktal", -2), 60, 300, "Customs mobile post, Koktal")
        side("KZ-CHK-ZHARKENT", "checkpoint", c.km("Zharkent", 4), 60, 300, "Customs mobile post, Zharkent")
    elif c is HKIA_LOK_MA_CHAU:
        Z["dep"] = end_office(c, "HK-HKIA-ST1", True, 700, 450, "Hactl SuperTerminal 1, Hong Kong International Airport (air cargo)", rng)
        Z["dest"] = end_office(c, "HK-LMC-CP", False, 900, 600, "Lok Ma Chau control point, goods vehicle clearance", rng)
        side("HK-FCA-CHK-LMC", "checkpoint", c.km("San Tin", 0.3), 0, 150, "Police checkpoint, Frontier Closed Area, Lok Ma Chau")
    elif c is BANGKOK_LAEM_CHABANG:
        Z["dep"] = end_office(c, "TH-ICD-LKB", True, 1400, 800, "Lat Krabang inland container depot (ICD), Lat Krabang customs house", rng)
        Z["dest"] = end_office(c, "TH-LCB-PORT", False, 2400, 1600, "Laem Chabang port, Laem Chabang customs house", rng)
        # Motorway 7 kilometre posts are about 11 km ahead of this corridor's (it starts at the ICD).
        side("TH-M7-REST-LATKRABANG", "rest_area", c.km("Lat Krabang interchange"), 150, 200, "Lat Krabang rest stop, M7 km 21.7")
        side("TH-M7-SA-BANGPAKONG", "rest_area", c.km("Bang Pakong river", 1.8), 180, 250, "Bang Pakong service area, M7 km 49.3")
        side("TH-M7-REST-NONGRI", "rest_area", c.km("Nong Ri", 2.2), 150, 200, "Nong Ri rest stop, M7 km 72.5")
        side("TH-LCB-TRUCK-TERMINAL", "parking", c.km("Port access road", -1.0), 300, 350, "Laem Chabang port truck terminal")
    _CATALOGUES[c.key] = Z
    return Z


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------


def iso6346(owner_serial):
    """A container number with its ISO 6346 check digit (`owner_serial`: 4 letters, 6 digits)."""
    vals, v = {}, 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if v % 11 == 0:
            v += 1
        vals[ch] = v
        v += 1
    total = sum((int(ch) if ch.isdigit() else vals[ch]) * 2**i for i, ch in enumerate(owner_serial))
    return owner_serial + str(total % 11 % 10)


@dataclass
class Expect:
    transit: str
    kind: str
    t: int
    tol: int = 240
    sensor: str | None = None


class Sc:
    """One scenario file being built."""

    def __init__(self, path, story, coarse=False):
        self.path = path
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.rng = random.Random(zlib.crc32(self.name.encode()))
        self.story = story
        self.coarse = coarse
        self.zones, self.transits, self.actions, self.reads, self.obs = [], [], [], [], []
        self.expect: list[Expect] = []
        self.until = None
        self.notes = []

    @property
    def interval(self):
        return 180 if self.coarse else 60

    def tol(self, base=180):
        return max(base, self.interval + 120)

    def zone(self, *places):
        for p in places:
            z = p.zone if isinstance(p, Place) else p
            if not any(x["id"] == z["id"] for x in self.zones):
                self.zones.append(z)

    def alarm(self, transit, kind, t, tol=None, sensor=None):
        self.expect.append(Expect(transit, kind, int(t), tol if tol is not None else self.tol(), sensor))

    def note(self, text):
        self.notes.append(text)

    def description(self):
        parts = [self.story.strip()]
        parts += self.notes
        if self.expect:
            items = []
            for e in sorted(self.expect, key=lambda e: e.t):
                what = e.kind + (f" ({e.sensor})" if e.sensor else "")
                items.append(f"{what} on {e.transit} at about {day_hhmm(e.t)}")
            parts.append("Expected alarms: " + "; ".join(items) + ".")
        else:
            parts.append("Expected alarms: none.")
        return " ".join(parts)

    def document(self):
        obs = sorted(self.obs, key=lambda o: (o["t"], o["device"], o.get("seq", 0)))
        doc = {
            "name": self.name,
            "description": self.description(),
            "zones": self.zones,
            "transits": self.transits,
        }
        if self.actions:
            doc["actions"] = sorted(self.actions, key=lambda a: a["t"])
        if self.reads:
            doc["reads"] = sorted(self.reads, key=lambda r: r["t"])
        doc["observations"] = [reorder_keys(o) for o in obs] if not getattr(self, "keep_order", False) else [reorder_keys(o) for o in self.obs]
        if self.until:
            doc["until"] = ts(self.until)
        return doc


def transit(tid, device, c: Corridor, Z, sealed_at=None, deadline=None, max_duration=None, stop_zones=(),
            unseal_zones=(), rules=None, route=True, corridor_m=None, **extra):
    t = {"id": tid, "device": device}
    if "device_kind" in extra:
        t["device_kind"] = extra.pop("device_kind")
    t["mode"] = "road"
    t["departure"] = Z["dep"].zone["id"]
    t["destination"] = Z["dest"].zone["id"]
    if route:
        t["route"] = {"type": "LineString", "coordinates": c.route(200)}
    if corridor_m:
        t["corridor_m"] = corridor_m
    if sealed_at is not None:
        t["sealed_at"] = ts(sealed_at)
    if deadline is not None:
        t["deadline"] = ts(deadline)
    if max_duration:
        t["max_duration"] = max_duration
    if stop_zones:
        t["stop_zones"] = [p.zone["id"] if isinstance(p, Place) else p for p in stop_zones]
    if unseal_zones:
        t["unseal_zones"] = list(unseal_zones)
    if rules:
        t["rules"] = rules
    t.update(extra)
    return t


def action(t, tid, kind, **kw):
    a = {"t": ts(t), "transit": tid, "action": kind}
    a.update(kw)
    return a


def read(t, reader, zone, device, data, intact=True):
    r = {"t": ts(t), "reader": reader, "zone": zone, "device": device, "intact": intact}
    if data is not None:
        r["data"] = data
    return r


# ---- writing -------------------------------------------------------------------------------


def dumps_value(v):
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def dump(doc):
    out = ["{"]
    keys = list(doc)
    for n, k in enumerate(keys):
        v = doc[k]
        comma = "," if n < len(keys) - 1 else ""
        if k in ("zones", "actions", "reads", "observations") and isinstance(v, list):
            sep = (",", ":") if k == "observations" else (", ", ": ")
            out.append(f'  "{k}": [')
            for i, item in enumerate(v):
                c2 = "," if i < len(v) - 1 else ""
                out.append("    " + json.dumps(item, ensure_ascii=False, separators=sep) + c2)
            out.append("  ]" + comma)
        elif k == "transits":
            out.append('  "transits": [')
            for i, t in enumerate(v):
                out.append("    {")
                tk = list(t)
                for j, kk in enumerate(tk):
                    c3 = "," if j < len(tk) - 1 else ""
                    out.append(f'      "{kk}": {dumps_value(t[kk])}{c3}')
                out.append("    }" + ("," if i < len(v) - 1 else ""))
            out.append("  ]" + comma)
        else:
            out.append(f'  "{k}": {dumps_value(v)}{comma}')
    out.append("}")
    return "\n".join(out) + "\n"


# ---- helpers for expectations --------------------------------------------------------------


def deviation_alarms(sim: Sim, route, corridor_m=1000.0, grace=120, margin=40.0):
    """When the engine should raise route deviations for a simulated drive: two or more
    reports outside the corridor spanning the grace period. Returns (t_alarm, t_back)."""
    out = []
    since = None
    raised = None
    for r in sim.reports:
        d = polyline_dist([r.lon, r.lat], route)
        if d > corridor_m + margin:
            if since is None:
                since = r.t
            if raised is None and r.t - since >= grace:
                raised = r.t
        elif d < corridor_m - margin:
            if raised is not None:
                out.append((raised, r.t))
            since, raised = None, None
    if raised is not None:
        out.append((raised, None))
    return out


def inside(zone, p):
    if zone["area"]["type"] == "Point":
        return haversine(zone["area"]["coordinates"], p) <= zone["radius_m"]
    ring = zone["area"]["coordinates"][0]
    x, y, ins = p[0], p[1], False
    for (ax, ay), (bx, by) in zip(ring, ring[1:]):
        if (ay > y) != (by > y) and x < ax + (y - ay) / (by - ay) * (bx - ax):
            ins = not ins
    return ins


def entered(sim: Sim, place, after=0):
    """When the first report inside the zone was sent (true position)."""
    z = place.zone if isinstance(place, Place) else place
    return next(r.t for r in sim.reports if r.t >= after and inside(z, [r.lon, r.lat]))


def first_report_at(sim: Sim, t):
    for r in sim.reports:
        if r.t >= t:
            return r.t
    raise ValueError(ts(t))


# ------------------------------------------------------------------------------------------
# Scenario registry
# ------------------------------------------------------------------------------------------

SCENARIOS = []


def scenario(*paths_and_coarse):
    """Registers a builder for one or more files: ("testdata/scenarios/x.json", False), ..."""

    def reg(fn):
        for path, coarse in paths_and_coarse:
            SCENARIOS.append((path, coarse, fn))
        return fn

    return reg


CORPUS = "testdata/scenarios"
EXAMPLES = "examples"


def build_path(c, rng, Z, wait_s, events=(), dwell_s=1800, meander=110.0, start=None, end=None):
    """A journey from the departure office (or `start`, a list of points driven before it) to
    the destination office. `events`, by corridor position:
      ("visit", place, seconds, label)              stop in a zone beside the road
      ("shoulder", s, seconds, label, lateral_m)    stop beside the road, outside any zone
      ("spur", s, spot, seconds, label, kmh)        drive off to `spot`, stop, come back
      ("excursion", s, via, spot, seconds, label, kmh)  the same along streets through `via`
      ("detour", s_a, s_b, lateral_m, kmh)          drive beside the corridor for a stretch
      ("jam", s_a, s_b)                             stop-and-go traffic
      ("mark", s, label)                            remember when the truck passes s
    """
    p = Path(c, rng, meander)
    if start:
        p.start(start[0])
        for q in start[1:]:
            p.line_to(q, 40)
        p.line_to(Z["dep"].spot, 20)
    else:
        p.start(Z["dep"].spot)
    p.stop(wait_s, "departure")
    p.join_road()
    for ev in events:
        if ev[0] == "detour":
            p.detour(ev[1], ev[2], ev[3], kmh=ev[4])
        elif ev[0] == "jam":
            p.jam(ev[1], ev[2])

    def pos(ev):
        return ev[1].s if ev[0] == "visit" else ev[1]

    for ev in sorted((e for e in events if e[0] not in ("detour", "jam")), key=pos):
        p.drive(pos(ev))
        if ev[0] == "visit":
            p.visit(ev[1].spot, ev[2], ev[3])
        elif ev[0] == "shoulder":
            p.visit(c.beside(ev[1], ev[4]), ev[2], ev[3], kmh=15)
        elif ev[0] == "spur":
            p.visit(ev[2], ev[3], ev[4], kmh=ev[5])
        elif ev[0] == "excursion":
            p.excursion(ev[2], ev[3], ev[4], ev[5], kmh=ev[6])
        elif ev[0] == "mark":
            p.mark(ev[2])
    s_end = c.length if end is None else end
    p.drive(s_end)
    if end is None:
        p.arrive(Z["dest"].spot, dwell_s)
    return p


def run(sc: Sc, p: Path, t0, dev: Device, n_outliers=0, keep_clear=(), parked=None, outlier_in_stops=(), cruise=None, interval=None):
    sim = simulate(p, t0, sc.rng, cruise_kmh=cruise, interval=interval or sc.interval,
                   parked_interval=parked if parked is not None else (600 if sc.coarse else None))
    if callable(keep_clear):
        keep_clear = keep_clear(sim)
    outl = plan_outliers(sim, sc.rng, n_outliers, p.c, keep_clear) if n_outliers else []
    for label in outlier_in_stops:
        a, b = sim.stops[label]
        mid = first_report_at(sim, (a + b) // 2)
        kind = ["none", "big", "small"][len(outl) % 3]
        outl.append(Outlier(mid, sc.rng.uniform(400, 1800) if kind != "small" else sc.rng.uniform(300, 800), kind, sc.rng.uniform(0, 360)))
    obs = observations(sim, dev, sc.rng, outl)
    return sim, obs, outl


def describe_outliers(outl):
    if not outl:
        return ""
    k = {"none": 0, "big": 0, "small": 0}
    for o in outl:
        k[o.acc] += 1
    what = [f"{n} {label}" for n, label in ((k["none"], "without accuracy_m"), (k["big"], "with a large accuracy_m"),
                                            (k["small"], "with a normal-looking accuracy_m")) if n]
    lo, hi = f"{min(o.dist_m for o in outl) / 1000:.1f}", f"{max(o.dist_m for o in outl) / 1000:.1f}"
    size = f"{lo} km" if lo == hi else f"{lo} to {hi} km"
    one = len(outl) == 1
    return (f"GNSS noise: jitter of tens of metres and {len(outl)} single outlier{'' if one else 's'} of {size} "
            f"({', '.join(what)}).")


# ------------------------------------------------------------------------------------------
# Clean journeys
# ------------------------------------------------------------------------------------------


@scenario((f"{CORPUS}/clean-yiwu-ningbo-noise.json", False), (f"{EXAMPLES}/yiwu-ningbo-clean.json", False))
def clean_yiwu_ningbo(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-03T00:40:00Z")  # 08:40 in Yiwu
    rest = Z["CN-SA-SHENGZHOU"]
    p = build_path(c, sc.rng, Z, 14 * 60, [("visit", rest, 25 * 60, "rest")], dwell_s=50 * 60)
    dev = Device("ZJ-EL-2041730", "elock", accuracy=True, seq=31877, battery=88, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=2 if sc.coarse else 5, outlier_in_stops=["rest"] if not sc.coarse else [])
    arr = entered(sim, Z["dest"])
    unlock = sim.stops["destination"][0] + 35 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], rest, Z["CN-FUEL-XINCHANG"], Z["CN-CHK-FENGHUA"], Z["dest"])
    sc.transits.append(transit("T-YW-0311", dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600,
                               stop_zones=[rest, Z["CN-FUEL-XINCHANG"]],
                               rules={"low_battery_pct": 15},
                               vehicle={"plate": "浙G 7K219", "containers": [iso6346("CSNU703412")]},
                               cargo=[{"type": "Christmas decorations", "hs_code": "950510", "quantity": 1843, "unit": "CT", "origin": "CN"}],
                               declaration={"number": "290120261000318877"}))
    sc.obs += obs
    sc.until = sim.end + 20 * 60
    sc.story = (
        f"A clean export transit from Yiwu railway port to Ningbo Beilun port on the G1512 expressway, reporting every {sc.interval} s. "
        f"Sealed at {hhmm(t0)} ({hhmm(t0 + 8 * 3600)} deadline), waits {14} min in the port, slows and halts briefly at "
        f"traffic lights in Yiwu and Beilun (well under 3 minutes each), drives 80 km/h on the expressway, rests 25 min in "
        f"the Shengzhou service area (a permitted stop zone), arrives in Beilun at about {hhmm(arr)} and unlocks there at "
        f"{hhmm(unlock)} after arrival (an authorised unseal, ending supervision). {describe_outliers(outl)} "
        "None of this may raise an alarm.")


@scenario((f"{CORPUS}/clean-minsk-brest-long-rest.json", False))
def clean_minsk_brest_long_rest(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-04T05:10:00Z")  # 08:10 in Minsk
    fuel, rest = Z["BY-M1-FUEL-STOLBTSY"], Z["BY-M1-REST-BEREZA"]
    p = build_path(c, sc.rng, Z, 20 * 60, [("visit", fuel, 18 * 60, "fuel"), ("visit", rest, 90 * 60, "rest")], dwell_s=60 * 60)
    dev = Device("BY-ES-004417", "eseal", accuracy=True, seq=5120, battery=76, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=5, outlier_in_stops=["rest"])
    arr = sim.stops["destination"][0]
    sc.zone(Z["dep"], Z["BY-CHK-STOLBTSY"], fuel, Z["BY-CHK-IVATSEVICHI"], rest, Z["dest"])
    sc.transits.append(transit("T-BY-1104-07", dev.id, c, Z, sealed_at=t0, max_duration="PT10H", stop_zones=[fuel, rest],
                               vehicle={"plate": "AK 4521-1", "containers": [iso6346("TGHU881205")]},
                               declaration={"number": "06611/041126/0031207"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    a, b = sim.stops["rest"]
    arr = entered(sim, Z["dest"])
    sc.story = (
        f"A clean transit from Kolyadichi (Minsk) to Kozlovichi (Brest) on the M1, with an e-seal reporting every 60 s and a "
        f"time limit of max_duration PT10H. Sealed at {hhmm(t0)}, leaves after 20 min, refuels for 18 min at the Stolbtsy "
        f"station (a permitted stop zone), and takes a long rest of 1 h 30 from {hhmm(a)} to {hhmm(b)} in the Bereza rest area "
        f"(permitted; the limit there is 2 h), with one GNSS outlier during the rest. Arrives at about {hhmm(arr)} and waits "
        f"an hour for clearance. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-yiwu-ningbo-detour-in-corridor.json", False))
def clean_yiwu_ningbo_detour(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-05T01:05:00Z")
    d1 = (c.km("Huzhen", -3), c.km("Huzhen", 2))
    d2 = (c.km("Ningbo south", 4), c.km("Ningbo south", 9))
    p = build_path(c, sc.rng, Z, 12 * 60, [("detour", d1[0], d1[1], 620, 50), ("detour", d2[0], d2[1], -560, 50)], dwell_s=30 * 60)
    dev = Device("ZJ-EL-2051184", "elock", accuracy=False, seq=802, battery=93, drain_per_h=0.5)
    sim0 = None
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3)
    del sim0
    route = c.route(200)
    far = max(polyline_dist([r.lon, r.lat], route) for r in sim.reports)
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit("T-YW-0318", dev.id, c, Z, sealed_at=t0, deadline=t0 + 7 * 3600))
    sc.obs += obs
    unlock = sim.stops["destination"][0] + 20 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.until = sim.end + 15 * 60
    sc.story = (
        f"A clean Yiwu -> Ningbo transit that twice follows a road-works diversion beside the expressway: about 620 m to "
        f"the left for 5 km near Huzhen and 560 m to the right for 5 km south of Ningbo, at 50 km/h. The truck is never more "
        f"than {far:.0f} m from the declared route, inside the 1000 m corridor, so this is not a deviation. The device "
        f"reports no accuracy_m. Unlocked in Beilun after arrival (authorised). {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-minsk-brest-wait-at-departure.json", False))
def clean_minsk_brest_wait(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-06T06:00:00Z")
    p = build_path(c, sc.rng, Z, 60 * 60, [], dwell_s=40 * 60)
    dev = Device("BY-EL-019934", "elock", accuracy=False, seq=17, battery=97, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3)
    dep = sim.marks.get("departure")
    a, b = sim.stops["departure"]
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit("T-BY-1106-02", dev.id, c, Z, sealed_at=t0, deadline=t0 + 10 * 3600))
    sc.obs += obs
    sc.until = sim.end + 15 * 60
    del dep
    sc.story = (
        f"Sealed at {hhmm(t0)} in the Kolyadichi terminal, the truck waits a full hour in the terminal (the departure "
        f"office is a permitted stop zone, limit 2 h) before leaving at {hhmm(b)}, then drives the M1 to Brest without "
        f"further stops and arrives at about {hhmm(entered(sim, Z['dest']))}. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-mombasa-malaba-long-haul.json", False))
def clean_mombasa_malaba(sc: Sc):
    c = MOMBASA_MALABA
    Z = zones_of(c)
    t0 = epoch("2026-11-05T03:30:00Z")  # 06:30 in Mombasa
    ev = [
        ("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"),
        ("visit", Z["KE-VOI-TRUCK-PARK"], 50 * 60, "voi"),
        ("visit", Z["KE-FUEL-MAKINDU"], 20 * 60, "makindu"),
        ("jam", c.km("Mlolongo", -2), c.km("Mlolongo", 3)),
        ("visit", Z["KE-WB-ATHI-RIVER"], 25 * 60, "athi"),
        ("visit", Z["KE-NAIVASHA-TRUCK-PARK"], 11 * 3600, "night"),
        ("visit", Z["KE-WB-GILGIL"], 15 * 60, "gilgil"),
        ("visit", Z["KE-FUEL-NAKURU"], 20 * 60, "nakuru"),
        ("visit", Z["KE-ELDORET-TRUCK-PARK"], 60 * 60, "eldoret"),
        ("visit", Z["KE-WB-WEBUYE"], 15 * 60, "webuye"),
        ("mark", c.km("Tsavo river", 8), "gap"),
    ]
    p = build_path(c, sc.rng, Z, 30 * 60, ev, dwell_s=60 * 60)
    dev = Device("KE-RECTS-104522", "eseal", accuracy=True, seq=220, battery=95, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=6, interval=120, parked=300, outlier_in_stops=["night"])
    g = sim.marks["gap"]
    obs = drop(obs, g, g + 20 * 60)
    stops = [Z[k] for k in ("KE-WB-MARIAKANI", "KE-VOI-TRUCK-PARK", "KE-FUEL-MAKINDU", "KE-WB-ATHI-RIVER", "KE-NAIVASHA-TRUCK-PARK",
                            "KE-WB-GILGIL", "KE-FUEL-NAKURU", "KE-ELDORET-TRUCK-PARK", "KE-WB-WEBUYE")]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit("T-KE-26-004511", dev.id, c, Z, sealed_at=t0, deadline=t0 + 60 * 3600, stop_zones=stops,
                               rules={"max_stop_inside": "PT12H"},
                               vehicle={"plate": "KCX 412M", "containers": [iso6346("MSKU604219")]},
                               declaration={"number": "26MBAIM400458812"}))
    sc.obs += obs
    sc.until = sim.end + 15 * 60
    na, nb = sim.stops["night"]
    sc.story = (
        f"A clean two-day transit on the Northern Corridor from the port of Mombasa to the Malaba border (about 860 km), "
        f"with an e-seal reporting every 120 s while moving and every 5 min when parked. Trucks cruise at 60-70 km/h, slower "
        f"through towns and up the Rift Valley escarpments, with stop-and-go traffic at Mlolongo (halts of 30-120 s). "
        f"Permitted stops (all in stop_zones): weighbridges at Mariakani, Athi River, Gilgil and Webuye, lunch at Voi and "
        f"Eldoret truck parks, fuel at Makindu and Nakuru, and a night of 11 h in the Naivasha truck park from {day_hhmm(na)} to "
        f"{day_hhmm(nb)} (max_stop_inside is PT12H for this long-haul transit). A 20-minute gap in mobile coverage in Tsavo "
        f"from {hhmm(g)} is far below the 4 h communication-loss limit. Arrives at Malaba at about "
        f"{day_hhmm(entered(sim, Z['dest']))}. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-almaty-khorgos-reefer.json", False))
def clean_almaty_khorgos_reefer(sc: Sc):
    c = ALMATY_KHORGOS
    Z = zones_of(c)
    t0 = epoch("2026-11-06T03:00:00Z")  # 08:00 in Almaty
    fuel, rest = Z["KZ-FUEL-SHELEK"], Z["KZ-REST-KOKPEK"]
    p = build_path(c, sc.rng, Z, 25 * 60, [("visit", fuel, 22 * 60, "fuel"), ("visit", rest, 45 * 60, "rest")], dwell_s=40 * 60)
    dev = Device("KZ-SC-MSCU5527", "container", accuracy=True, seq=40211, battery=81, drain_per_h=0.3,
                 temperature=(4.6, 0.18), humidity=(88, 1.5), fuel=(34.0, 0.05))
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=4)
    fa, fb = sim.stops["fuel"]
    add_fuel(obs, dev.id, fa + 4 * 60, fa + 14 * 60, 52.0)
    sc.zone(Z["dep"], Z["KZ-CHK-TALGAR"], fuel, rest, Z["dest"])
    sc.transits.append(transit("T-KZ-50401-1106", dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600, stop_zones=[fuel, rest],
                               device_kind="smart_container_affixed",
                               rules={"temperature_c": [2, 8]},
                               vehicle={"plate": "123 ABX 02", "containers": [iso6346("MSCU552710")]},
                               cargo=[{"type": "Apples, fresh", "hs_code": "080810", "quantity": 21400, "unit": "KGM", "origin": "KZ"}],
                               declaration={"number": "50401/061126/0004127"}))
    sc.obs += obs
    sc.until = sim.end + 15 * 60
    temps = [o["temperature_c"] for o in obs]
    fuels = [o["fuel_pct"] for o in obs]
    sc.story = (
        f"A clean reefer transit from Almaty to the Nur Zholy border post at Khorgos: a smart container unit reports every 60 s "
        f"with door, temperature ({min(temps)} to {max(temps)} °C against declared limits of 2 to 8 °C), humidity, and the "
        f"truck's fuel level ({min(fuels)} to {max(fuels)} %: normal consumption of about 2 % per 30 min with sensor slosh, and "
        f"a refuel from {hhmm(fa)} at the Shelek station). A 45-minute rest in the Kokpek rest area. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-happy-lifecycle.json", False))
def clean_happy_lifecycle(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-09T00:20:00Z")
    p = build_path(c, sc.rng, Z, 30 * 60, [("visit", Z["CN-SA-XIKOU"], 20 * 60, "rest")], dwell_s=80 * 60)
    dev = Device("ZJ-EL-2041958", "elock", accuracy=True, seq=7710, battery=99, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3)
    t_seal = t0 + 12 * 60
    parked = sim.stops["destination"][0]
    arr = entered(sim, Z["dest"])
    rel, unlock, close = parked + 30 * 60, parked + 45 * 60, parked + 65 * 60
    set_fields(obs, 0, t_seal, lock="unlocked")
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], Z["CN-SA-XIKOU"], Z["dest"])
    sc.transits.append(transit("T-YW-0322", dev.id, c, Z, deadline=t0 + 8 * 3600, stop_zones=[Z["CN-SA-XIKOU"]],
                               offices={"departure": "CN290100", "destination": "CN310400"}))
    sc.actions += [
        action(t_seal, "T-YW-0322", "seal", reason="e-lock fitted and locked by officer 0417"),
        action(rel, "T-YW-0322", "release", reason="documents checked, no inspection"),
        action(close, "T-YW-0322", "close", reason="transit discharged"),
    ]
    sc.obs += obs
    sc.until = sim.end + 15 * 60
    sc.story = (
        f"The full lifecycle of a transit without an alarm. The e-lock reports from {hhmm(t0)} while still open; an officer "
        f"seals the transit with a `seal` action at {hhmm(t_seal)} (reports before it are not supervised). The truck leaves "
        f"Yiwu, rests 20 min in the Xikou service area, arrives in Beilun at about {hhmm(arr)}, is released at {hhmm(rel)}, "
        f"unlocks inside the destination zone at {hhmm(unlock)} (authorised: unsealed) and the transit is closed at "
        f"{hhmm(close)}. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-pre-seal-off-route.json", False))
def clean_pre_seal(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-10T23:30:00Z")  # 07:30 in Yiwu, next day
    factory = [120.0950, 29.4210]
    p = Path(c, sc.rng)
    p.start(factory)
    p.stop(40 * 60, "loading")
    p.line_to([120.0820, 29.3900], 40)
    p.line_to([120.0600, 29.3640], 40)
    p.line_to(Z["dep"].spot, 20)
    p.stop(35 * 60, "departure")
    p.join_road()
    p.drive(c.length)
    p.arrive(Z["dest"].spot, 30 * 60)
    dev = Device("ZJ-EL-2042007", "elock", accuracy=True, seq=120, battery=100, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=2)
    at_office = sim.stops["departure"][0]
    sealed = ceil_to(at_office + 10 * 60, 300)
    set_fields(obs, 0, sealed, lock="unlocked")
    unlock = sim.stops["destination"][0] + 20 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    route = c.route(200)
    pre_far = max(polyline_dist([r.lon, r.lat], route) for r in sim.reports if r.t < sealed)
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit("T-YW-0331", dev.id, c, Z, sealed_at=sealed, deadline=sealed + 7 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Observations before sealed_at must be ignored. The e-lock is fitted at a factory north of Yiwu and reports from "
        f"{hhmm(t0)}: the truck loads for 40 min with the lock open, {pre_far / 1000:.1f} km from the declared route, then "
        f"drives to the Yiwu port office, still unlocked. It is sealed at {hhmm(sealed)} (lock locked from then on), leaves, "
        f"and arrives in Beilun at about {hhmm(entered(sim, Z['dest']))}, unlocking there after arrival. Neither the "
        f"off-route driving nor the open lock before sealing is an alarm.")


@scenario((f"{CORPUS}/clean-tunnels-and-coverage-gap.json", False))
def clean_tunnels(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-12T02:10:00Z")
    ev = [("mark", c.km("Huzhen", -6), "gap"), ("mark", c.km("Xinchang east", 2), "tunnel1"),
          ("mark", c.km("Ninghai north", -2), "tunnel2"), ("mark", c.km("Xikou", 4), "tunnel3")]
    p = build_path(c, sc.rng, Z, 15 * 60, ev, dwell_s=30 * 60)
    dev = Device("ZJ-EL-2042311", "elock", accuracy=True, seq=64001, battery=72, drain_per_h=0.6)
    gap = None
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3)
    gap = sim.marks["gap"]
    obs = drop(obs, gap, gap + 25 * 60)
    spells, spans = [], []
    for label, minutes in (("tunnel1", 3), ("tunnel2", 5), ("tunnel3", 7)):
        a = sim.marks[label]
        assert all(a >= b for _, b in spans), "tunnel spells overlap"
        no_fix(obs, a, a + minutes * 60)
        spans.append((a, a + minutes * 60 + 120))
        spells.append(f"{minutes} min from {hhmm(a)}")
    unlock = sim.stops["destination"][0] + 15 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit("T-YW-0340", dev.id, c, Z, sealed_at=t0, deadline=t0 + 7 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Gaps that are normal on a mountain expressway. The device loses mobile coverage for 25 min from {hhmm(gap)} "
        f"(nothing is received; it does not buffer), which is far below the 4 h communication-loss limit, and the first "
        f"fix after the gap is where an 80 km/h truck would be (no jamming). Between Xinchang and Xikou it drives through "
        f"tunnels and keeps reporting without a GNSS fix (\"fix\": false) for {', '.join(spells)}: each spell is shorter "
        f"than the 10 min no_fix_after limit. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-mombasa-nairobi-stop-and-go.json", False))
def clean_mombasa_nairobi_jam(sc: Sc):
    c = MOMBASA_NAIROBI
    Z = zones_of(c)
    t0 = epoch("2026-11-13T03:00:00Z")
    ev = [("visit", Z["KE-WB-MARIAKANI"], 25 * 60, "mariakani"), ("visit", Z["KE-MTITO-TRUCK-PARK"], 40 * 60, "lunch"),
          ("jam", c.km("Athi River", -6), c.km("Mlolongo", 4)), ("visit", Z["KE-WB-ATHI-RIVER"], 20 * 60, "athi")]
    p = build_path(c, sc.rng, Z, 35 * 60, ev, dwell_s=40 * 60)
    dev = Device("KE-RECTS-104871", "eseal", accuracy=True, seq=9001, battery=84, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=4, parked=300)
    stops = [Z["KE-WB-MARIAKANI"], Z["KE-MTITO-TRUCK-PARK"], Z["KE-WB-ATHI-RIVER"]]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit("T-KE-26-004602", dev.id, c, Z, sealed_at=t0, deadline=t0 + 14 * 3600, stop_zones=stops))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    halts = sum(1 for a, b in zip(sim.reports, sim.reports[1:]) if a.v > 0 and b.v == 0)
    sc.story = (
        f"A clean Mombasa -> Nairobi ICD transit through heavy traffic: traffic lights in Mombasa, weighbridge queues at "
        f"Mariakani (25 min) and Athi River (20 min) and lunch at the Mtito Andei truck park, all permitted stop zones, then "
        f"stop-and-go traffic from Athi River through Mlolongo at about 14 km/h with halts of 30 s to 2 min. The reports "
        f"show {halts} halts; none lasts the 3 minutes that make a stop, so there is no illegal stay. "
        f"Arrives at about {hhmm(entered(sim, Z['dest']))}. {describe_outliers(outl)}")


# ------------------------------------------------------------------------------------------
# One scenario per alarm kind: raised, cleared, raised again on the same transit
# ------------------------------------------------------------------------------------------


def windows_between(sim, *pairs, pad=0):
    return [(sim.marks.get(a, sim.stops.get(a, (None,))[0]) - pad, sim.marks.get(b, sim.stops.get(b, (None, None))[1]) + pad) for a, b in pairs]


@scenario((f"{CORPUS}/route-deviation-minsk-brest.json", False))
def route_deviation(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-16T05:00:00Z")
    d_a = c.km("Stolbtsy", 10)
    d_b = d_a + 14_000
    s_v = c.km("Kobrin", -12)
    village = c.beside(s_v, 5200)
    ev = [("detour", d_a, d_b, -3500, 60), ("mark", d_a - 3000, "d1a"), ("mark", d_b + 3000, "d1b"),
          ("spur", s_v, village, 10 * 60, "village", 45), ("mark", s_v - 1500, "d2a")]
    p = build_path(c, sc.rng, Z, 15 * 60, ev, dwell_s=30 * 60)
    dev = Device("BY-ES-004502", "eseal", accuracy=True, seq=880, battery=91, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 4,
                         keep_clear=lambda s: [(s.marks["d1a"], s.marks["d1b"]), (s.marks["d2a"], s.stops["village"][1] + 900)])
    route = c.route(200)
    dev_ = deviation_alarms(sim, route)
    tid = "T-BY-1116-03"
    for t_alarm, _ in dev_:
        sc.alarm(tid, "route_deviation", t_alarm)
    sc.zone(Z["dep"], Z["BY-CHK-STOLBTSY"], Z["BY-CHK-KOBRIN"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 9 * 3600,
                               vehicle={"plate": "AM 7719-3", "containers": [iso6346("SEGU412087")]}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    va, vb = sim.stops["village"]
    backs = ", ".join(hhmm(b) for _, b in dev_ if b)
    sc.story = (
        f"Route deviation on the M1, twice. A few km past Stolbtsy the driver leaves the M1 and follows a parallel local road "
        f"about 3.5 km to the south for 14 km (avoiding a toll gantry) before rejoining it; later, "
        f"12 km before Kobrin, he drives 5 km north to a village, stays 10 min ({hhmm(va)}-{hhmm(vb)}, below the 15 min of an "
        f"illegal stay) and comes back. Each excursion is one alarm once two reports outside the 1000 m corridor span the "
        f"2 min grace, cleared when back inside the corridor (at about {backs}). Reports every {sc.interval} s. "
        f"{describe_outliers(outl)}")


@scenario((f"{CORPUS}/illegal-stay-mombasa-nairobi.json", False))
def illegal_stay(sc: Sc):
    c = MOMBASA_NAIROBI
    Z = zones_of(c)
    t0 = epoch("2026-11-17T03:20:00Z")
    ev = [("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"), ("shoulder", c.km("Mackinnon Road", 3), 40 * 60, "stop1", 25),
          ("visit", Z["KE-VOI-TRUCK-PARK"], 45 * 60, "lunch"), ("shoulder", c.km("Kibwezi", 8), 25 * 60, "stop2", -30)]
    p = build_path(c, sc.rng, Z, 30 * 60, ev, dwell_s=30 * 60)
    dev = Device("KE-RECTS-105230", "eseal", accuracy=True, seq=31, battery=88, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3, parked=300)
    tid = "T-KE-26-004733"
    for lbl in ("stop1", "stop2"):
        sc.alarm(tid, "illegal_stay", sim.stops[lbl][0] + 15 * 60)
    stops = [Z["KE-WB-MARIAKANI"], Z["KE-VOI-TRUCK-PARK"]]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 15 * 3600, stop_zones=stops))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    a1, b1 = sim.stops["stop1"]
    a2, b2 = sim.stops["stop2"]
    sc.story = (
        f"Illegal stays on the A109. Besides permitted stops at the Mariakani weighbridge (20 min) and the Voi truck park "
        f"(45 min), the truck stops on the road shoulder past Mackinnon Road from {hhmm(a1)} to {hhmm(b1)} (40 min) and near "
        f"Kibwezi from {hhmm(a2)} to {hhmm(b2)} (25 min), outside any permitted zone: an illegal stay 15 min after each stop "
        f"began, cleared when the truck moves on. Reports every 60 s, every 5 min when parked. {describe_outliers(outl)}")


@scenario((f"{EXAMPLES}/mombasa-malaba-illegal-stay.json", True))
def illegal_stay_malaba(sc: Sc):
    c = MOMBASA_MALABA
    Z = zones_of(c)
    t0 = epoch("2026-11-18T03:30:00Z")
    ev = [("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"), ("visit", Z["KE-VOI-TRUCK-PARK"], 45 * 60, "lunch"),
          ("visit", Z["KE-WB-ATHI-RIVER"], 25 * 60, "athi"), ("visit", Z["KE-NAIVASHA-TRUCK-PARK"], 11 * 3600, "night"),
          ("shoulder", c.km("Salgaa", 2), 50 * 60, "salgaa", 20), ("visit", Z["KE-ELDORET-TRUCK-PARK"], 50 * 60, "eldoret")]
    p = build_path(c, sc.rng, Z, 30 * 60, ev, dwell_s=40 * 60)
    dev = Device("KE-RECTS-105611", "eseal", accuracy=True, seq=4410, battery=93, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=2, interval=300, parked=900)
    tid = "T-KE-26-004790"
    a, b = sim.stops["salgaa"]
    sc.alarm(tid, "illegal_stay", a + 15 * 60, tol=420)
    stops = [Z[k] for k in ("KE-WB-MARIAKANI", "KE-VOI-TRUCK-PARK", "KE-WB-ATHI-RIVER", "KE-NAIVASHA-TRUCK-PARK", "KE-ELDORET-TRUCK-PARK")]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 60 * 3600, stop_zones=stops,
                               rules={"max_stop_inside": "PT12H"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Mombasa -> Malaba over two days (reports every 5 min, every 15 min when parked) with permitted stops at Mariakani, "
        f"Voi, Athi River, a night in the Naivasha truck park and lunch in Eldoret. On the second morning the truck stops "
        f"for 50 min on the road shoulder near Salgaa ({day_hhmm(a)} to {day_hhmm(b)}), outside any permitted zone: an illegal "
        f"stay 15 min after it stopped, cleared when it moves on. Arrives at Malaba at about {day_hhmm(entered(sim, Z['dest']))}.")


@scenario((f"{CORPUS}/overtime-stay-minsk-brest.json", False), (f"{EXAMPLES}/minsk-brest-overtime-stay.json", True))
def overtime_stay(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-18T04:40:00Z")
    rest, buf = Z["BY-M1-REST-DZERZHINSK"], Z["BY-BREST-BUFFER"]
    p = build_path(c, sc.rng, Z, 15 * 60, [("visit", rest, 160 * 60, "rest"), ("visit", buf, 180 * 60, "queue")], dwell_s=30 * 60)
    dev = Device("BY-EL-020117", "elock", accuracy=False, seq=3090, battery=83, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3, parked=300 if not sc.coarse else None)
    tid = "T-BY-1118-11"
    for lbl in ("rest", "queue"):
        sc.alarm(tid, "overtime_stay", sim.stops[lbl][0] + 2 * 3600)
    sc.zone(Z["dep"], rest, buf, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 14 * 3600, stop_zones=[rest, buf]))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    ra, rb = sim.stops["rest"]
    qa, qb = sim.stops["queue"]
    sc.story = (
        f"Overtime stays in permitted zones (limit max_stop_inside PT2H). The driver stops in the M1 rest area at km 52 from "
        f"{hhmm(ra)} to {hhmm(rb)} (2 h 40), then waits in the Brest border-queue buffer zone from {hhmm(qa)} to {hhmm(qb)} "
        f"(3 h) before entering the Kozlovichi terminal. Each stop raises overtime_stay 2 h after it began and clears when "
        f"the truck moves on. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/illegal-opening-yiwu-ningbo.json", False), (f"{EXAMPLES}/yiwu-ningbo-illegal-opening.json", True))
def illegal_opening(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-19T00:50:00Z")
    sa = Z["CN-SA-XIKOU"]
    p = build_path(c, sc.rng, Z, 12 * 60, [("shoulder", c.km("Huzhen", 4), 12 * 60, "layby", 35), ("visit", sa, 30 * 60, "rest")],
                   dwell_s=40 * 60)
    dev = Device("ZJ-EL-2043345", "elock", accuracy=True, seq=15008, battery=77, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3)
    tid = "T-YW-0377"
    la, lb = sim.stops["layby"]
    ra, rb = sim.stops["rest"]
    step = sc.interval
    del step
    o1 = (la + 3 * 60 + 17, la + 8 * 60 + 41)
    o2 = (ra + 10 * 60 + 9, ra + 14 * 60 + 26)
    for a, b in (o1, o2):
        lock_window(obs, dev.id, a, b, sc.rng, lock="unlocked")
        sc.alarm(tid, "illegal_opening", a, tol=1)
    arr = entered(sim, Z["dest"])
    unlock = sim.stops["destination"][0] + 20 * 60 + 13
    set_fields(obs, unlock, 10**10, lock="unlocked")
    insert_report(obs, dev.id, unlock, sc.rng, lock="unlocked")
    renumber(obs, dev.id)
    sc.zone(Z["dep"], sa, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 7 * 3600, stop_zones=[sa]))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Illegal openings. The e-lock reports \"unlocked\" from {hhmm(o1[0])} to {hhmm(o1[1])} while the truck is stopped "
        f"12 min in a lay-by near Huzhen, and again from {hhmm(o2[0])} to {hhmm(o2[1])} during a rest in the Xikou service "
        f"area: a permitted stop zone, but no unseal was authorised there. It reports each change of lock state at once. Each opening is an alarm, cleared when the lock reports "
        f"\"locked\" again. The lay-by stop is below 15 min, so it is not an illegal stay. After arrival in Beilun "
        f"(about {hhmm(arr)}) the lock is opened at {hhmm(unlock)} inside the destination: authorised, unsealed, no alarm. "
        f"{describe_outliers(outl)}")


@scenario((f"{CORPUS}/journey-timeout-mombasa-nairobi.json", False), (f"{EXAMPLES}/mombasa-nairobi-journey-timeout.json", True))
def journey_timeout(sc: Sc):
    c = MOMBASA_NAIROBI
    Z = zones_of(c)
    t0 = epoch("2026-11-20T03:00:00Z")
    park = Z["KE-MTITO-TRUCK-PARK"]
    ev = [("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"), ("visit", park, 3 * 3600, "breakdown"),
          ("jam", c.km("Athi River", -5), c.km("Mlolongo", 4))]
    p = build_path(c, sc.rng, Z, 20 * 60, ev, dwell_s=30 * 60)
    dev = Device("KE-RECTS-105877", "eseal", accuracy=True, seq=70, battery=90, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3, parked=300 if not sc.coarse else None)
    arr = sim.stops["destination"][0]
    d1 = floor_to(arr - 3 * 3600, 1800)
    ext = d1 + 25 * 60
    d2 = floor_to(arr - 50 * 60, 1800)
    assert d2 > ext + 1800 and arr - d2 >= 600, (ts(d1), ts(d2), ts(arr))
    tid = "T-KE-26-004811"
    sc.alarm(tid, "journey_timeout", d1, tol=5)
    sc.alarm(tid, "journey_timeout", d2, tol=5)
    stops = [Z["KE-WB-MARIAKANI"], park]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=d1, stop_zones=stops, rules={"max_stop_inside": "PT4H"}))
    sc.actions.append(action(ext, tid, "extend_deadline", deadline=ts(d2), reason="breakdown at Mtito Andei reported by the driver"))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    ba, bb = sim.stops["breakdown"]
    sc.story = (
        f"Journey timeout, twice. The transit must reach Nairobi ICD by {hhmm(d1)}. The truck breaks down and is repaired in "
        f"the Mtito Andei truck park from {hhmm(ba)} to {hhmm(bb)} (a permitted stop zone; max_stop_inside is PT4H here), so "
        f"the time limit passes while it is still on the road: journey_timeout at {hhmm(d1)}. At {hhmm(ext)} an officer extends "
        f"the limit to {hhmm(d2)} (extend_deadline), which clears the alarm; stop-and-go traffic from Athi River through "
        f"Mlolongo delays it again and the new limit passes too: a second journey_timeout at {hhmm(d2)}, cleared on arrival at "
        f"about {hhmm(entered(sim, Z['dest']))}. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/communication-loss-mombasa-nairobi.json", False), (f"{EXAMPLES}/mombasa-nairobi-communication-loss.json", True))
def communication_loss(sc: Sc):
    c = MOMBASA_NAIROBI
    Z = zones_of(c)
    t0 = epoch("2026-11-21T03:10:00Z")
    ev = [("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"), ("mark", c.km("Tsavo river", -18), "gap1"),
          ("mark", c.km("Kibwezi", 6), "gap2")]
    p = build_path(c, sc.rng, Z, 25 * 60, ev, dwell_s=30 * 60)
    dev = Device("KE-RECTS-106004", "eseal", accuracy=True, seq=5577, battery=86, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3,
                         keep_clear=lambda s: [(s.marks["gap1"], s.marks["gap1"] + 3600), (s.marks["gap2"], s.marks["gap2"] + 3000)])
    g1, g2 = sim.marks["gap1"], sim.marks["gap2"]
    obs = drop(obs, g1, g1 + 50 * 60)
    obs = drop(obs, g2, g2 + 40 * 60)
    tid = "T-KE-26-004856"
    times = report_times(obs)
    for g in (g1, g2):
        last = max(t for t in times if t < g)
        sc.alarm(tid, "communication_loss", last + 30 * 60, tol=5)
    stops = [Z["KE-WB-MARIAKANI"]]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 14 * 3600, stop_zones=stops,
                               rules={"comm_loss_after": "PT30M"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Communication loss, twice, with a strict rule for this transit (comm_loss_after PT30M). Through Tsavo the e-seal "
        f"is out of mobile coverage for 50 min from {hhmm(g1)} and, past Kibwezi, for 40 min from {hhmm(g2)}; it does not "
        f"buffer, so nothing is received. Each silence raises communication_loss 30 min after the last report and the next "
        f"report clears it. The positions after each gap are consistent with the truck's speed, so there is no "
        f"suspected jamming. Reports every {sc.interval} s. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/low-battery-almaty-khorgos.json", False), (f"{EXAMPLES}/almaty-khorgos-low-battery.json", True))
def low_battery(sc: Sc):
    c = ALMATY_KHORGOS
    Z = zones_of(c)
    t0 = epoch("2026-11-23T03:30:00Z")
    rest = Z["KZ-REST-KOKPEK"]
    p = build_path(c, sc.rng, Z, 20 * 60, [("visit", Z["KZ-FUEL-SHELEK"], 15 * 60, "fuel"), ("visit", rest, 40 * 60, "rest")],
                   dwell_s=40 * 60)
    dev = Device("KZ-EL-0093314", "elock", accuracy=False, seq=2201, battery=20, drain_per_h=0)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 2)
    ra, rb = sim.stops["rest"]
    charge = (ra + 8 * 60, ra + 30 * 60)
    battery_profile(obs, dev.id, t0, 19.6, 2.3, charging=[charge], charge_per_h=10)
    tid = "T-KZ-50401-1123"
    low = [o for o in obs if o["battery_pct"] < 15 and not o.get("charging")]
    first = epoch(low[0]["t"])
    second = next(epoch(o["t"]) for o in low if epoch(o["t"]) > charge[1])
    add_events(obs, first, "low_battery")
    add_events(obs, second, "low_battery")
    sc.alarm(tid, "low_battery", first, tol=5)
    sc.alarm(tid, "low_battery", second, tol=5)
    plugged = first_at(obs, charge[0])["battery_pct"]
    unplugged = max(o["battery_pct"] for o in obs if o.get("charging"))
    stops = [Z["KZ-FUEL-SHELEK"], rest]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600, stop_zones=stops))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Low battery in the cold (-18 °C) on the road to Khorgos. The e-lock leaves Almaty with 19 % and drains about "
        f"2.3 % an hour: it reports 14 % at {hhmm(first)} (with a low_battery event): low_battery. During the rest at Kokpek the "
        f"driver plugs it into the cab for 22 min ({hhmm(charge[0])}-{hhmm(charge[1])}, \"charging\": true) at "
        f"{plugged} %, which clears the alarm; unplugged at {unplugged} %, it falls below 15 % again at {hhmm(second)}: a second low_battery. "
        f"Reports every {sc.interval} s. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/tamper-minsk-brest.json", False), (f"{EXAMPLES}/minsk-brest-tamper.json", True))
def tamper(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-24T15:40:00Z")  # 18:40 in Minsk
    park = Z["BY-M1-PARKING-BARANOVICHI"]
    p = build_path(c, sc.rng, Z, 15 * 60, [("visit", park, 9 * 3600, "night")], dwell_s=30 * 60)
    dev = Device("BY-ES-004644", "eseal", accuracy=True, seq=1290, battery=95, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3, parked=300 if not sc.coarse else 600)
    na, nb = sim.stops["night"]
    tid = "T-BY-1124-05"
    e1 = add_events(obs, na + 2 * 3600 + 10 * 60, "tamper")
    e2 = add_events(obs, na + 5 * 3600 + 40 * 60, "back_cover_open", "tamper")
    assert e2 < nb - 3600
    sc.alarm(tid, "tamper", e1, tol=5)
    sc.alarm(tid, "tamper", e2, tol=5)
    sc.zone(Z["dep"], park, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 18 * 3600, stop_zones=[park],
                               rules={"max_stop_inside": "PT10H"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Tamper attempts during a night in the guarded truck parking at Baranovichi ({day_hhmm(na)} to {day_hhmm(nb)}; "
        f"max_stop_inside PT10H). At {hhmm(e1)} the e-seal reports a tamper event (its shock sensor: someone is working on "
        f"the seal), quiet again 10 min later (cleared by the next report after that); at {hhmm(e2)} it reports back_cover_open "
        f"and tamper: a second tamper alarm, cleared in the same way. The rope stays intact and the lock locked. "
        f"{describe_outliers(outl)}")


@scenario((f"{CORPUS}/unauthorized-action-yiwu-ningbo.json", False), (f"{EXAMPLES}/yiwu-ningbo-unauthorized-action.json", True))
def unauthorized_action(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-24T01:15:00Z")
    s1, s2 = Z["CN-SA-SHENGZHOU"], Z["CN-SA-XIKOU"]
    p = build_path(c, sc.rng, Z, 10 * 60, [("visit", s1, 35 * 60, "rest1"), ("visit", s2, 30 * 60, "rest2")], dwell_s=30 * 60)
    dev = Device("ZJ-EL-2043761", "elock", accuracy=True, seq=50012, battery=68, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3)
    a1, _ = sim.stops["rest1"]
    a2, _ = sim.stops["rest2"]
    tid = "T-YW-0402"
    st = sc.interval
    e1 = add_events(obs, a1 + 8 * 60, "wrong_password")
    add_events(obs, e1 + st, "wrong_password")
    add_events(obs, e1 + 2 * st, "wrong_password")
    e2 = add_events(obs, a2 + 12 * 60, "illegal_card")
    add_events(obs, e2 + st, "illegal_card", "wrong_password")
    sc.alarm(tid, "unauthorized_action", e1, tol=5)
    sc.alarm(tid, "unauthorized_action", e2, tol=5)
    unlock = sim.stops["destination"][0] + 15 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], s1, s2, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600, stop_zones=[s1, s2]))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Unauthorised attempts to open the e-lock. While the truck rests in the Shengzhou service area, the lock reports "
        f"wrong_password three reports in a row from {hhmm(e1)}; in the Xikou service area it reports illegal_card (an RFID "
        f"card it does not accept) from {hhmm(e2)}, then illegal_card and wrong_password. Each burst raises "
        f"unauthorized_action, cleared once no attempt has been reported for 10 min. The lock never opens; it is unlocked "
        f"normally after arrival in Beilun. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/device-fault-almaty-khorgos.json", False), (f"{EXAMPLES}/almaty-khorgos-device-fault.json", True))
def device_fault(sc: Sc):
    c = ALMATY_KHORGOS
    Z = zones_of(c)
    t0 = epoch("2026-11-25T03:10:00Z")
    p = build_path(c, sc.rng, Z, 20 * 60, [("mark", c.km("Esik", 5), "f1"), ("mark", c.km("Koktal", -25), "f2"),
                                           ("visit", Z["KZ-REST-KOKPEK"], 30 * 60, "rest")], dwell_s=30 * 60)
    dev = Device("KZ-ES-0071120", "eseal", accuracy=True, seq=880, battery=79, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 2)
    tid = "T-KZ-50401-1125"
    f1 = add_events(obs, sim.marks["f1"], "fault")
    f2 = add_events(obs, sim.marks["f2"], "fault")
    add_events(obs, f2 + sc.interval, "fault")
    sc.alarm(tid, "device_fault", f1, tol=5)
    sc.alarm(tid, "device_fault", f2, tol=5)
    sc.zone(Z["dep"], Z["KZ-REST-KOKPEK"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600, stop_zones=[Z["KZ-REST-KOKPEK"]]))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Device faults. The e-seal reports a fault event at {hhmm(f1)} past Esik (a failed self-test of the locking motor) "
        f"and, near Koktal, at {hhmm(f2)} and once more at the next report. Each raises device_fault, cleared once no fault "
        f"has been reported for 10 min; position, lock and rope reports stay normal throughout. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/environment-reefer-yiwu-ningbo.json", False), (f"{EXAMPLES}/yiwu-ningbo-reefer-temperature.json", True))
def environment_reefer(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-26T00:30:00Z")
    sa = Z["CN-SA-SHENGZHOU"]
    p = build_path(c, sc.rng, Z, 15 * 60, [("mark", c.km("Huzhen", -10), "fail"), ("visit", sa, 40 * 60, "repair"),
                                           ("mark", c.km("Xikou", -8), "defrost")], dwell_s=30 * 60)
    dev = Device("CN-SC-TRIU8823", "container", accuracy=True, seq=2040, battery=92, drain_per_h=0.3, temperature=(4.8, 0.12),
                 humidity=(90, 1.5))
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3)
    tf = sim.marks["fail"]
    ra, rb = sim.stops["repair"]
    peak_t = ra + 12 * 60
    peak = 4.8 + 0.105 * (peak_t - tf) / 60
    temperature_profile(obs, dev.id, [(tf, 4.8), (peak_t, peak), (peak_t + 40 * 60, 4.9)], sc.rng)
    td = sim.marks["defrost"]
    temperature_profile(obs, dev.id, [(td, 4.8), (td + 16 * 60, 8.9), (td + 36 * 60, 4.8)], sc.rng)
    tid = "T-YW-0415"
    raised = False
    firsts = []
    for o in obs:
        v = o["temperature_c"]
        if not raised and v > 8:
            raised = True
            firsts.append(epoch(o["t"]))
        elif raised and v <= 7.7:
            raised = False
    for t in firsts:
        sc.alarm(tid, "environment", t, tol=5, sensor="temperature_c")
    back = next(epoch(o["t"]) for o in obs if epoch(o["t"]) > firsts[0] and o["temperature_c"] <= 7.7)
    sc.zone(Z["dep"], sa, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600, stop_zones=[sa],
                               device_kind="smart_container_embedded", rules={"temperature_c": [2, 8]},
                               vehicle={"plate": "浙B 3F807", "containers": [iso6346("TRIU882310")]},
                               cargo=[{"type": "Vaccines, human medicine", "hs_code": "300220", "quantity": 640, "unit": "CT", "origin": "CN"}]))
    unlock = sim.stops["destination"][0] + 15 * 60
    set_fields(obs, unlock, 10**10, door="open", lock="unlocked")
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"A reefer with vaccines, declared limits 2-8 °C. The refrigeration unit fails at {hhmm(tf)}: the temperature climbs "
        f"about 0.1 °C a minute, passes 8 °C and peaks at {peak:.1f} °C while the driver pulls into the Shengzhou service area "
        f"({hhmm(ra)}) and restarts the unit at about {hhmm(peak_t)}; it is back at 7.7 °C (the limit less 5 % of the "
        f"range) at {hhmm(back)}. Near Xikou a long defrost cycle from {hhmm(td)} pushes it to about 8.9 °C for a few minutes. Each excursion "
        f"is one environment alarm (sensor temperature_c), cleared when back within limits. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/abnormal-fuel-mombasa-malaba.json", False), (f"{EXAMPLES}/mombasa-malaba-fuel-theft.json", True))
def abnormal_fuel(sc: Sc):
    c = MOMBASA_MALABA
    Z = zones_of(c)
    t0 = epoch("2026-11-26T03:30:00Z")
    ev = [("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"), ("visit", Z["KE-VOI-TRUCK-PARK"], 45 * 60, "voi"),
          ("visit", Z["KE-FUEL-MAKINDU"], 20 * 60, "makindu"), ("visit", Z["KE-NAIVASHA-TRUCK-PARK"], 11 * 3600, "night"),
          ("visit", Z["KE-FUEL-NAKURU"], 20 * 60, "nakuru"), ("visit", Z["KE-ELDORET-TRUCK-PARK"], 60 * 60, "eldoret")]
    p = build_path(c, sc.rng, Z, 30 * 60, ev, dwell_s=40 * 60)
    dev = Device("KE-RECTS-106218", "eseal", accuracy=True, seq=12, battery=96, drain_per_h=0.4, fuel=(58.0, 0.058))
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 4, interval=300 if sc.coarse else 120,
                         parked=900 if sc.coarse else 300)
    ma, _ = sim.stops["makindu"]
    add_fuel(obs, dev.id, ma + 3 * 60, ma + 13 * 60, 38.0)
    na, nb = sim.stops["night"]
    theft1 = (na + 4 * 3600 + 10 * 60, na + 4 * 3600 + 30 * 60)
    add_fuel(obs, dev.id, *theft1, -11.0)
    ka, _ = sim.stops["nakuru"]
    add_fuel(obs, dev.id, ka + 3 * 60, ka + 13 * 60, 45.0)
    ea, _ = sim.stops["eldoret"]
    theft2 = (ea + 15 * 60, ea + 27 * 60)
    add_fuel(obs, dev.id, *theft2, -8.0)
    tid = "T-KE-26-004902"
    window = []
    recent = []
    raised = False
    for o in obs:
        # The engine smooths fuel readings with the median of the last three (sensor slosh).
        recent = (recent + [o["fuel_pct"]])[-3:]
        t, v = epoch(o["t"]), sorted(recent)[len(recent) // 2]
        window = [(a, b) for a, b in window if t - a <= 1800] + [(t, v)]
        drop_ = max(b for _, b in window) - v
        if drop_ >= 5 and not raised:
            raised = True
            sc.alarm(tid, "abnormal_fuel", t, tol=5)
        elif drop_ < 5:
            raised = False
    stops = [Z[k] for k in ("KE-WB-MARIAKANI", "KE-VOI-TRUCK-PARK", "KE-FUEL-MAKINDU", "KE-NAIVASHA-TRUCK-PARK", "KE-FUEL-NAKURU",
                            "KE-ELDORET-TRUCK-PARK")]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 60 * 3600, stop_zones=stops,
                               rules={"max_stop_inside": "PT12H"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Fuel theft on the Northern Corridor, twice. The e-seal also reports the truck's fuel level (a 600 l tank: about "
        f"2 % an hour on the road, with sensor slosh; refuels at Makindu and Nakuru). During the night in the Naivasha truck "
        f"park about 11 % (65 l) is siphoned between {day_hhmm(theft1[0])} and {hhmm(theft1[1])}; at lunch in the Eldoret truck "
        f"park another 8 % between {day_hhmm(theft2[0])} and {hhmm(theft2[1])}. Each drop of 5 points or more within 30 min "
        f"(readings smoothed by a median of three) raises abnormal_fuel, cleared once the drop has left the 30 min window. Reports every "
        f"{300 if sc.coarse else 120} s, every {15 if sc.coarse else 5} min when parked. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/suspected-jamming-minsk-brest.json", False))
def suspected_jamming(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-27T05:30:00Z")
    p = build_path(c, sc.rng, Z, 15 * 60, [("mark", c.km("Novaya Mysh", -4), "j1"), ("mark", c.km("Bereza", 10), "j2")], dwell_s=30 * 60)
    dev = Device("BY-EL-020388", "elock", accuracy=False, seq=45000, battery=88, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3,
                         keep_clear=lambda s: [(s.marks["j1"], s.marks["j1"] + 1800), (s.marks["j2"], s.marks["j2"] + 1200)])
    j1, j2 = sim.marks["j1"], sim.marks["j2"]
    no_fix(obs, j1, j1 + 25 * 60)
    no_fix(obs, j2, j2 + 15 * 60)
    tid = "T-BY-1127-09"
    for j in (j1, j2):
        first = min(t for o in obs if o.get("fix") is False and (t := epoch(o["t"])) >= j)
        raise_t = min(t for o in obs if o.get("fix") is False and (t := epoch(o["t"])) >= first + 600)
        sc.alarm(tid, "suspected_jamming", raise_t, tol=5)
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 9 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Suspected GNSS jamming. Past Novaya Mysh the e-lock keeps reporting every {sc.interval} s but without a position "
        f"(\"fix\": false) for 25 min from {hhmm(j1)}, and past Bereza for 15 min from {hhmm(j2)}: a jammer in the cab. Each "
        f"spell raises suspected_jamming after 10 min without a fix (no_fix_after) and the next fix clears it. Reports keep "
        f"arriving, so there is no communication loss. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/cloned-device-yiwu-ningbo.json", False), (f"{EXAMPLES}/yiwu-ningbo-cloned-seal.json", True))
def cloned_device(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-27T01:00:00Z")
    p = build_path(c, sc.rng, Z, 15 * 60, [("mark", c.km("Huzhen", 0), "c1"), ("mark", c.km("Xikou", -10), "c2")], dwell_s=30 * 60)
    dev = Device("ZJ-EL-2044090", "elock", accuracy=True, seq=60410, battery=81, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 3,
                         keep_clear=lambda s: [(s.marks["c1"], s.marks["c1"] + 900), (s.marks["c2"], s.marks["c2"] + 900)])
    yard = [120.2870, 30.1650]  # a yard in Xiaoshan, Hangzhou: about 100 km north of the route
    tid = "T-YW-0431"
    clones = []
    for lbl in ("c1", "c2"):
        base = [o for o in obs if epoch(o["t"]) >= sim.marks[lbl]][:4]
        for k, (g, old) in enumerate(((base[2], base[0]), (base[3], base[1]))):
            p_ = shift(yard, sc.rng.gauss(0, 8), sc.rng.gauss(0, 8))
            cl = {"device": dev.id, "t": ts(epoch(g["t"]) + 25), "lat": rnd(p_[1], 6), "lon": rnd(p_[0], 6), "accuracy_m": 6,
                  "speed_kmh": 0, "course_deg": 0, "lock": "locked", "battery_pct": 64, "seq": old["seq"]}
            clones.append(cl)
            if k == 0:
                sc.alarm(tid, "cloned_device", epoch(cl["t"]), tol=5)
    obs += clones
    unlock = sim.stops["destination"][0] + 15 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 7 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"A cloned e-lock. While the real truck drives the G1512, a second device with the same identity reports twice from a "
        f"yard in Xiaoshan, about 100 km away, at {hhmm(epoch(clones[0]['t']))} and again at {hhmm(epoch(clones[2]['t']))}, each "
        f"time re-using sequence numbers the real device sent a few minutes earlier, with different content. The first such "
        f"report raises cloned_device (a sequence number reused with other content; the jump of 100 km in seconds also shows "
        f"it); reports are consistent again 10 min later, which clears it; the second episode raises it again. The route and "
        f"stop rules ignore the impossible positions. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/checkpoint-mismatch-almaty-khorgos.json", False), (f"{EXAMPLES}/almaty-khorgos-checkpoint-mismatch.json", True))
def checkpoint_mismatch(sc: Sc):
    c = ALMATY_KHORGOS
    Z = zones_of(c)
    t0 = epoch("2026-11-28T03:00:00Z")
    chk = ["KZ-CHK-TALGAR", "KZ-CHK-SHELEK", "KZ-CHK-KOKTAL", "KZ-CHK-ZHARKENT"]
    p = build_path(c, sc.rng, Z, 20 * 60, [("visit", Z[k], 4 * 60, k) for k in chk], dwell_s=60 * 60)
    sim = simulate(p, t0, sc.rng, interval=300)
    tid = "T-KZ-50401-1128"
    dev = "KZ-SS-00412"
    data = {"container": iso6346("MSCU552710"), "declaration": "50401/281126/0004388", "plate": "123ABX02"}
    bad = dict(data, container=iso6346("TGHU771402"))
    rd = []
    readers = {"KZ-CHK-TALGAR": "KZ-RD-0107", "KZ-CHK-SHELEK": "KZ-RD-0112", "KZ-CHK-KOKTAL": "KZ-RD-0131", "KZ-CHK-ZHARKENT": "KZ-RD-0134"}
    times = {k: sim.stops[k][0] + 90 for k in chk}
    rd.append(read(times["KZ-CHK-TALGAR"], readers["KZ-CHK-TALGAR"], "KZ-CHK-TALGAR", dev, data))
    rd.append(read(times["KZ-CHK-SHELEK"], readers["KZ-CHK-SHELEK"], "KZ-CHK-SHELEK", dev, bad))
    rd.append(read(times["KZ-CHK-KOKTAL"], readers["KZ-CHK-KOKTAL"], "KZ-CHK-KOKTAL", dev, data))
    rd.append(read(times["KZ-CHK-ZHARKENT"], readers["KZ-CHK-ZHARKENT"], "KZ-CHK-ZHARKENT", dev, data, intact=False))
    arr = sim.stops["destination"][0] + 5 * 60
    rd.append(read(arr, "KZ-RD-0201", Z["dest"].zone["id"], dev, data, intact=False))
    sc.reads += rd
    sc.alarm(tid, "checkpoint_mismatch", times["KZ-CHK-SHELEK"], tol=1)
    sc.alarm(tid, "checkpoint_mismatch", times["KZ-CHK-ZHARKENT"], tol=1)
    insp, unseal, close = arr + 20 * 60, arr + 50 * 60, arr + 90 * 60
    sc.actions += [action(insp, tid, "inspect", reason="seal found broken at Zharkent; physical inspection"),
                   action(unseal, tid, "unseal", reason="seal removed by the inspecting officer"),
                   action(close, tid, "close", reason="inspection found the declared goods; discharged")]
    sc.zone(Z["dep"], *[Z[k] for k in chk], Z["dest"])
    sc.transits.append(transit(tid, dev, c, Z, sealed_at=t0, deadline=t0 + 9 * 3600, route=True, device_kind="semi_active",
                               device_data=data))
    sc.until = close + 10 * 60
    sc.story = (
        f"A semi-active seal supervised by checkpoint reads alone (no position reports). The data written at departure "
        f"(container, declaration, plate) is read at four customs posts: Talgar at {hhmm(times['KZ-CHK-TALGAR'])} matches; "
        f"Shelek at {hhmm(times['KZ-CHK-SHELEK'])} reads another container number (checkpoint_mismatch); Koktal at "
        f"{hhmm(times['KZ-CHK-KOKTAL'])} matches again (cleared); at Zharkent ({hhmm(times['KZ-CHK-ZHARKENT'])}) the reader "
        f"finds the seal broken (intact: false): checkpoint_mismatch again, still open when the broken seal is read at Nur "
        f"Zholy at {hhmm(arr)} (arrival). Customs inspects, unseals and closes the transit.")


# ------------------------------------------------------------------------------------------
# Ordering, several trucks, passive tags, combined incidents
# ------------------------------------------------------------------------------------------


@scenario((f"{CORPUS}/order-ordered-yiwu-ningbo.json", False), (f"{CORPUS}/order-shuffled-duplicated-yiwu-ningbo.json", False))
def order_pair(sc: Sc):
    shuffled = "shuffled" in sc.name
    sc.rng = random.Random(zlib.crc32(b"order-pair"))  # the same journey in both files
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-11-29T00:45:00Z")
    d_a = c.km("Dongyang east", 3)
    ev = [("detour", d_a, d_a + 9000, 3000, 60), ("shoulder", c.km("Xinchang east", 4), 28 * 60, "stop", 30)]
    p = build_path(c, sc.rng, Z, 15 * 60, ev, dwell_s=30 * 60)
    dev = Device("ZJ-EL-2044532", "elock", accuracy=True, seq=65300, battery=74, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3,
                         keep_clear=lambda s: [(s.reports[0].t + 1800, s.reports[0].t + 5400)])
    tid = "T-YW-0466"
    for t_alarm, _ in deviation_alarms(sim, c.route(200)):
        sc.alarm(tid, "route_deviation", t_alarm)
    sa, sb = sim.stops["stop"]
    sc.alarm(tid, "illegal_stay", sa + 15 * 60)
    unlock = sim.stops["destination"][0] + 15 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600))
    sc.until = sim.end + 10 * 60
    n_dup = 0
    if shuffled:
        r2 = random.Random(zlib.crc32(b"order-pair-shuffle"))
        keyed = sorted(((epoch(o["t"]) + r2.uniform(-180, 180), k, o) for k, o in enumerate(obs)), key=lambda x: (x[0], x[1]))
        out = [o for _, _, o in keyed]
        for o in list(obs):
            if r2.random() < 0.08:
                at = min(len(out), out.index(o) + r2.randint(0, 4))
                out.insert(at, dict(o))
                n_dup += 1
        obs = out
        sc.keep_order = True
    sc.obs += obs
    common = (
        f"A Yiwu -> Ningbo transit with a 9 km excursion 3 km north of the expressway past Dongyang (a route deviation) and "
        f"a 28-minute stop on the shoulder past Xinchang from {hhmm(sa)} (an illegal stay); arrives in Beilun at about "
        f"{hhmm(entered(sim, Z['dest']))}. ")
    if shuffled:
        sc.story = (
            f"The same journey as order-ordered-yiwu-ningbo.json (same observations), but the observations are stored out "
            f"of order (each moved by up to 3 min) and {n_dup} of them appear twice (exact duplicates, same seq). The replay "
            f"orders what it must and drops the duplicates, so the alarms are the same as in the ordered file. " + common)
    else:
        sc.story = ("Observations in time order; order-shuffled-duplicated-yiwu-ningbo.json holds the same ones shuffled "
                    "and partly duplicated and must give the same alarms. " + common)
    sc.story += describe_outliers(outl)


@scenario((f"{CORPUS}/multi-truck-interleaved-yiwu-ningbo.json", False))
def multi_truck(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    day = epoch("2026-11-30T00:00:00Z")
    sa, xk, chk = Z["CN-SA-SHENGZHOU"], Z["CN-SA-XIKOU"], Z["CN-CHK-FENGHUA"]
    sc.zone(Z["dep"], sa, xk, chk, Z["dest"])
    stories = []

    # T1: clean.
    t1 = day + 30 * 60
    p = build_path(c, sc.rng, Z, 15 * 60, [("visit", sa, 20 * 60, "rest")], dwell_s=20 * 60)
    d1 = Device("ZJ-EL-2045001", "elock", accuracy=True, seq=1200, battery=90, drain_per_h=0.5)
    sim1, o1, out1 = run(sc, p, t1, d1, n_outliers=2, interval=120)
    set_fields(o1, sim1.stops["destination"][0] + 10 * 60, 10**10, lock="unlocked")
    sc.transits.append(transit("T-YW-0501", d1.id, c, Z, sealed_at=t1, deadline=t1 + 7 * 3600, stop_zones=[sa]))
    stories.append("T-YW-0501 (ZJ-EL-2045001) is clean: a 20-min rest at Shengzhou, two GNSS outliers, unlocked after arrival.")

    # T2: reefer with one temperature excursion.
    t2 = day + 50 * 60
    p = build_path(c, sc.rng, Z, 12 * 60, [("mark", c.km("Shengzhou west", 0), "warm")], dwell_s=20 * 60)
    d2 = Device("CN-SC-SZLU9031", "container", accuracy=True, seq=70, battery=88, drain_per_h=0.3, temperature=(-18.5, 0.2))
    sim2, o2, _ = run(sc, p, t2, d2, interval=120)
    tw = sim2.marks["warm"]
    temperature_profile(o2, d2.id, [(tw, -18.5), (tw + 25 * 60, -13.6), (tw + 55 * 60, -18.4)], sc.rng)
    first_warm = min(epoch(o["t"]) for o in o2 if o["temperature_c"] > -15)
    sc.alarm("T-YW-0502", "environment", first_warm, tol=5, sensor="temperature_c")
    set_fields(o2, sim2.stops["destination"][0] + 10 * 60, 10**10, lock="unlocked", door="open")
    sc.transits.append(transit("T-YW-0502", d2.id, c, Z, sealed_at=t2, deadline=t2 + 7 * 3600, device_kind="smart_container_embedded",
                               rules={"temperature_c": [None, -15]}))
    stories.append(f"T-YW-0502 (CN-SC-SZLU9031) carries frozen food (at most -15 °C): its unit warms to about -13.6 °C after "
                   f"{hhmm(tw)}, one environment alarm cleared when it is cold again.")

    # T3: illegal stay on the shoulder.
    t3 = day + 70 * 60
    p = build_path(c, sc.rng, Z, 10 * 60, [("shoulder", c.km("Shengzhou", 6), 32 * 60, "stop", -25)], dwell_s=20 * 60)
    d3 = Device("ZJ-EL-2045017", "elock", accuracy=False, seq=330, battery=64, drain_per_h=0.6)
    sim3, o3, _ = run(sc, p, t3, d3, n_outliers=1, interval=120)
    s3 = sim3.stops["stop"][0]
    sc.alarm("T-YW-0503", "illegal_stay", s3 + 15 * 60, tol=300)
    set_fields(o3, sim3.stops["destination"][0] + 10 * 60, 10**10, lock="unlocked")
    sc.transits.append(transit("T-YW-0503", d3.id, c, Z, sealed_at=t3, deadline=t3 + 7 * 3600))
    stories.append(f"T-YW-0503 (ZJ-EL-2045017) stops 32 min on the shoulder past Shengzhou from {hhmm(s3)}: one illegal stay.")

    # T4: clean e-seal, rests at Xikou.
    t4 = day + 40 * 60
    p = build_path(c, sc.rng, Z, 20 * 60, [("visit", xk, 45 * 60, "rest")], dwell_s=20 * 60)
    d4 = Device("ZJ-ES-0098812", "eseal", accuracy=True, seq=9020, battery=97, drain_per_h=0.4)
    sim4, o4, _ = run(sc, p, t4, d4, n_outliers=2, interval=120)
    set_fields(o4, sim4.stops["destination"][0] + 10 * 60, 10**10, lock="unlocked")
    sc.transits.append(transit("T-YW-0504", d4.id, c, Z, sealed_at=t4, deadline=t4 + 7 * 3600, stop_zones=[xk]))
    stories.append("T-YW-0504 (ZJ-ES-0098812) is clean: a 45-min rest at Xikou.")

    # T5: passive tag, read at the Fenghua checkpoint and at Beilun.
    t5 = day + 60 * 60
    p = build_path(c, sc.rng, Z, 15 * 60, [("visit", chk, 3 * 60, "chk")], dwell_s=30 * 60)
    sim5 = simulate(p, t5, sc.rng, interval=300)
    data = {"plate": "浙G 90318", "declaration": "290120261000502207"}
    r1 = sim5.stops["chk"][0] + 60
    r2 = sim5.stops["destination"][0] + 6 * 60
    sc.reads += [read(r1, "CN-RD-FH02", chk.zone["id"], "CN-RFID-77120455", data),
                 read(r2, "CN-RD-BL11", Z["dest"].zone["id"], "CN-RFID-77120455", data)]
    sc.actions += [action(r2 + 20 * 60, "T-YW-0505", "release"), action(r2 + 35 * 60, "T-YW-0505", "unseal"),
                   action(r2 + 50 * 60, "T-YW-0505", "close")]
    sc.transits.append(transit("T-YW-0505", "CN-RFID-77120455", c, Z, sealed_at=t5, deadline=t5 + 7 * 3600, device_data=data))
    stories.append("T-YW-0505 is a passive RFID tag, read (matching) at the Fenghua checkpoint and on arrival in Beilun, "
                   "then released, unsealed by an officer and closed.")

    sc.obs += o1 + o2 + o3 + o4
    sc.until = max(s.end for s in (sim1, sim2, sim3, sim4)) + 10 * 60
    sc.until = max(sc.until, r2 + 60 * 60)
    sc.story = ("Five transits on the Yiwu -> Ningbo corridor the same morning, their reports interleaved in one file "
                "(four active devices reporting every 120 s, one passive tag): " + " ".join(stories))


@scenario((f"{CORPUS}/passive-tag-minsk-brest.json", False))
def passive_tag(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-12-01T06:00:00Z")
    chk = ["BY-CHK-STOLBTSY", "BY-CHK-IVATSEVICHI", "BY-CHK-KOBRIN"]
    p = build_path(c, sc.rng, Z, 20 * 60, [("visit", Z[k], 3 * 60, k) for k in chk], dwell_s=60 * 60)
    sim = simulate(p, t0, sc.rng, interval=300)
    tid, dev = "T-BY-1201-01", "BY-RFID-3307719"
    data = {"plate": "AI 3382-7", "declaration": "06611/011226/0040019", "seal": "BY-SEAL-0733102"}
    t_ = {k: sim.stops[k][0] + 70 for k in chk}
    arr = sim.stops["destination"][0] + 4 * 60
    sc.reads += [read(t_["BY-CHK-STOLBTSY"], "BY-RD-0331", "BY-CHK-STOLBTSY", dev, data),
                 read(t_["BY-CHK-IVATSEVICHI"], "BY-RD-0352", "BY-CHK-IVATSEVICHI", dev, None),
                 read(t_["BY-CHK-KOBRIN"], "BY-RD-0360", "BY-CHK-KOBRIN", dev, data),
                 read(arr, "BY-RD-0401", Z["dest"].zone["id"], dev, data)]
    sc.alarm(tid, "checkpoint_mismatch", t_["BY-CHK-IVATSEVICHI"], tol=1)
    rel, uns, close = arr + 25 * 60, arr + 40 * 60, arr + 55 * 60
    sc.actions += [action(rel, tid, "release"), action(uns, tid, "unseal", reason="tag seal cut by the officer"),
                   action(close, tid, "close")]
    sc.zone(Z["dep"], *[Z[k] for k in chk], Z["dest"])
    sc.transits.append(transit(tid, dev, c, Z, sealed_at=t0, deadline=t0 + 9 * 3600, device_data=data,
                               vehicle={"plate": "AI 3382-7"}))
    sc.until = close + 30 * 60
    sc.story = (
        f"A passive RFID seal on the M1, supervised only by checkpoint reads against the transit's device_data (no "
        f"position reports, so no communication-loss timer). Read at Stolbtsy at {hhmm(t_['BY-CHK-STOLBTSY'])} (matches); "
        f"at Ivatsevichi at {hhmm(t_['BY-CHK-IVATSEVICHI'])} the reader cannot read the tag (no data): checkpoint_mismatch; "
        f"at Kobrin at {hhmm(t_['BY-CHK-KOBRIN'])} it reads and matches, which clears it; the read at Kozlovichi at "
        f"{hhmm(arr)} matches and records the arrival. Then release, unseal by an officer, and close.")


@scenario((f"{CORPUS}/smuggling-attempt-yiwu-ningbo.json", False), (f"{EXAMPLES}/yiwu-ningbo-smuggling.json", True))
def smuggling(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-12-02T01:20:00Z")
    s_w = c.km("Huzhen", 6)
    warehouse = c.beside(s_w, -6000)
    p = build_path(c, sc.rng, Z, 15 * 60, [("spur", s_w, warehouse, 40 * 60, "warehouse", 40), ("mark", s_w - 1000, "w0")],
                   dwell_s=30 * 60)
    dev = Device("ZJ-ES-0099104", "eseal", accuracy=True, seq=300, battery=85, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1 if sc.coarse else 2,
                         keep_clear=lambda s: [(s.marks["w0"], s.stops["warehouse"][1] + 1200)])
    tid = "T-YW-0512"
    wa, wb = sim.stops["warehouse"]
    cut = wa + 9 * 60 + 12
    set_fields(obs, cut, 10**10, rope="cut")
    insert_report(obs, dev.id, cut, sc.rng, rope="cut", events=["tamper"])
    renumber(obs, dev.id)
    o_a, o_b = wa + 11 * 60 + 40, wa + 31 * 60 + 5
    lock_window(obs, dev.id, o_a, o_b, sc.rng, lock="unlocked")
    for t_alarm, _ in deviation_alarms(sim, c.route(200)):
        sc.alarm(tid, "route_deviation", t_alarm)
    sc.alarm(tid, "illegal_stay", wa + 15 * 60)
    sc.alarm(tid, "tamper", cut, tol=1)
    sc.alarm(tid, "illegal_opening", o_a, tol=1)
    unlock = sim.stops["destination"][0] + 15 * 60
    set_fields(obs, unlock, 10**10, lock="unlocked")
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 8 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"A smuggling attempt: several alarms from one incident. Past Huzhen the truck leaves the expressway and drives "
        f"6 km south to a warehouse (route_deviation), stays 40 min from {hhmm(wa)} (illegal_stay 15 min after it stopped), "
        f"the e-seal's rope is cut at {hhmm(cut)} (tamper, with a tamper event; the rope stays cut, so this alarm stays "
        f"open to the end) and the lock is opened from {hhmm(o_a)} to {hhmm(o_b)} (illegal_opening, cleared when locked again). "
        f"The truck then returns to the route (deviation cleared), drives on (illegal stay cleared) and arrives in Beilun at "
        f"about {hhmm(entered(sim, Z['dest']))}. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/environment-shock-mombasa-nairobi.json", False))
def environment_shock(sc: Sc):
    c = MOMBASA_NAIROBI
    Z = zones_of(c)
    t0 = epoch("2026-12-03T03:00:00Z")
    ev = [("visit", Z["KE-WB-MARIAKANI"], 20 * 60, "mariakani"), ("mark", c.km("Maungu", 12), "hit1"), ("mark", c.km("Emali", 15), "hit2"),
          ("visit", Z["KE-MTITO-TRUCK-PARK"], 40 * 60, "lunch")]
    p = build_path(c, sc.rng, Z, 20 * 60, ev, dwell_s=30 * 60)
    dev = Device("KE-RECTS-106530", "eseal", accuracy=True, seq=808, battery=92, drain_per_h=0.5, shock=True)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3, parked=300)
    tid = "T-KE-26-005017"
    h1 = first_at(obs, sim.marks["hit1"])
    h1["shock_g"] = 5.8
    h2 = first_at(obs, sim.marks["hit2"])
    h2["shock_g"] = 6.4
    sc.alarm(tid, "environment", epoch(h1["t"]), tol=1, sensor="shock_g")
    sc.alarm(tid, "environment", epoch(h2["t"]), tol=1, sensor="shock_g")
    stops = [Z["KE-WB-MARIAKANI"], Z["KE-MTITO-TRUCK-PARK"]]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 14 * 3600, stop_zones=stops, rules={"shock_g": 4},
                               cargo=[{"type": "Solar panels", "hs_code": "854143", "quantity": 620, "unit": "PCE", "origin": "CN"}]))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Fragile cargo (solar panels) with a declared shock limit of 4 g. Each report carries the peak shock since the last "
        f"one: 0.3 to 1.4 g on the A109, but a pothole past Maungu gives {h1['shock_g']} g at {hhmm(epoch(h1['t']))} and another "
        f"near Emali {h2['shock_g']} g at {hhmm(epoch(h2['t']))}. Each is one environment alarm (sensor shock_g), cleared by the "
        f"next normal reading. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/device-reused-return-transit.json", False))
def device_reused(sc: Sc):
    c1, c2 = YIWU_NINGBO, NINGBO_YIWU
    Z1, Z2 = zones_of(c1), zones_of(c2)
    t0 = epoch("2026-12-04T00:30:00Z")
    dev = Device("ZJ-EL-2046110", "elock", accuracy=True, seq=22000, battery=96, drain_per_h=0.6)
    p1 = build_path(c1, sc.rng, Z1, 15 * 60, [], dwell_s=2 * 3600 + 50 * 60)
    sim1, o1, _ = run(sc, p1, t0, dev, n_outliers=2, interval=120, parked=300)
    arr1 = entered(sim1, Z1["dest"])
    unlock1 = sim1.stops["destination"][0] + 25 * 60
    t_seal2 = ceil_to(sim1.end - 20 * 60, 600)
    set_fields(o1, unlock1, t_seal2, lock="unlocked")
    # The same lock, fitted on an import container going back to Yiwu.
    dev.battery = o1[-1]["battery_pct"]
    p2 = build_path(c2, sc.rng, Z2, 0, [("shoulder", c2.km("Shengzhou", 8), 30 * 60, "stop", 30)], dwell_s=30 * 60)
    p2.pts[0] = list(p1.pts[-1])
    sim2, o2, _ = run(sc, p2, sim1.end + 60, dev, n_outliers=1, interval=120, parked=300)
    set_fields(o2, sim2.stops["destination"][0] + 15 * 60, 10**10, lock="unlocked")
    s2 = sim2.stops["stop"][0]
    sc.alarm("T-YW-0520", "illegal_stay", s2 + 15 * 60, tol=300)
    sc.zone(Z1["dep"], Z1["dest"])
    sc.transits.append(transit("T-YW-0519", dev.id, c1, Z1, sealed_at=t0, deadline=t0 + 7 * 3600))
    sc.transits.append(transit("T-YW-0520", dev.id, c2, Z2, sealed_at=t_seal2, deadline=t_seal2 + 8 * 3600))
    sc.obs += o1 + o2
    sc.until = sim2.end + 10 * 60
    sc.story = (
        f"One e-lock, two transits. It seals T-YW-0519 from Yiwu to Beilun (sealed {hhmm(t0)}, arrives about {hhmm(arr1)}, "
        f"unlocked there at {hhmm(unlock1)}: unsealed, no alarm); it keeps reporting while unlocked and unsupervised in Beilun, "
        f"and is locked again on an import container that T-YW-0520 seals at {hhmm(t_seal2)} back to Yiwu. On the way the truck "
        f"stops 30 min on the shoulder past Shengzhou from {hhmm(s2)}: the illegal stay belongs to T-YW-0520, not to the "
        f"finished T-YW-0519.")


@scenario((f"{CORPUS}/illegal-opening-after-arrival-outside-port.json", False))
def opening_after_arrival(sc: Sc):
    c = YIWU_NINGBO
    Z = zones_of(c)
    t0 = epoch("2026-12-05T00:40:00Z")
    p = build_path(c, sc.rng, Z, 12 * 60, [], dwell_s=35 * 60)
    dest_c = zone_center(Z["dest"].zone)
    wh = shift(dest_c, -3100, -2600)
    p.line_to(shift(dest_c, -1500, -1400), 30)
    p.line_to(wh, 30)
    p.stop(90 * 60, "warehouse")
    dev = Device("ZJ-ES-0099230", "eseal", accuracy=True, seq=4400, battery=90, drain_per_h=0.5)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=2)
    tid = "T-YW-0533"
    wa, wb = sim.stops["warehouse"]
    o_a, o_b = wa + 6 * 60 + 20, wa + 19 * 60 + 45
    lock_window(obs, dev.id, o_a, o_b, sc.rng, lock="unlocked")
    auth = wa + 50 * 60
    final = auth + 12 * 60 + 30
    set_fields(obs, final, 10**10, lock="unlocked")
    insert_report(obs, dev.id, final, sc.rng, lock="unlocked")
    renumber(obs, dev.id)
    sc.alarm(tid, "illegal_opening", o_a, tol=1)
    sc.actions.append(action(auth, tid, "authorize_unseal", reason="delivery to the consignee's bonded warehouse approved"))
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 7 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"An opening after arrival, but outside the unseal zone. The truck arrives in the Beilun port area at about "
        f"{hhmm(entered(sim, Z['dest']))}, waits 35 min, then drives 4 km to the consignee's warehouse outside the port "
        f"(after arrival the route and stop rules no longer apply). There the lock is opened from {hhmm(o_a)} to "
        f"{hhmm(o_b)} without authorisation: illegal_opening (outside an unseal zone), cleared when locked again. At "
        f"{hhmm(auth)} customs authorises the unseal (authorize_unseal) and the lock opened at {hhmm(final)} is an "
        f"authorised unseal. {describe_outliers(outl)}")


@scenario((f"{CORPUS}/clean-deadline-extended-in-time.json", False))
def deadline_extended(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-12-07T05:00:00Z")
    park = Z["BY-M1-PARKING-BARANOVICHI"]
    p = build_path(c, sc.rng, Z, 15 * 60, [("visit", park, 110 * 60, "breakdown")], dwell_s=30 * 60)
    dev = Device("BY-EL-020512", "elock", accuracy=False, seq=700, battery=93, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=3, parked=300)
    arr = sim.stops["destination"][0]
    d1 = floor_to(arr - 40 * 60, 1800)
    ba, bb = sim.stops["breakdown"]
    ext = ba + 35 * 60
    d2 = ceil_to(arr + 2 * 3600, 1800)
    assert ext < d1 < entered(sim, Z["dest"]) and arr < d2
    tid = "T-BY-1207-04"
    sc.actions.append(action(ext, tid, "extend_deadline", deadline=ts(d2), reason="engine failure, repair at Baranovichi"))
    sc.zone(Z["dep"], park, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=d1, stop_zones=[park]))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"A time limit extended before it expires. The transit must reach Kozlovichi by {hhmm(d1)}; the truck breaks down "
        f"and is repaired in the Baranovichi truck parking from {hhmm(ba)} to {hhmm(bb)} (1 h 50, under the 2 h limit of a "
        f"permitted stop). At {hhmm(ext)} the officer extends the limit to {hhmm(d2)} (extend_deadline). The truck arrives at "
        f"about {hhmm(entered(sim, Z['dest']))}: after the original limit, before the new one, so no journey_timeout. "
        f"{describe_outliers(outl)}")


@scenario((f"{EXAMPLES}/minsk-brest-deviation.json", True))
def example_deviation(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-11-16T05:00:00Z")
    d_a = c.km("Stolbtsy", 10)
    d_b = d_a + 14_000
    p = build_path(c, sc.rng, Z, 15 * 60, [("detour", d_a, d_b, -3100, 60), ("mark", d_b + 3000, "back")], dwell_s=30 * 60)
    dev = Device("BY-EL-0042", "elock", accuracy=False, seq=880, battery=91, drain_per_h=0.5)
    sim, obs, _ = run(sc, p, t0, dev, interval=120)
    tid = "T1"
    episodes = deviation_alarms(sim, c.route(200))
    for t_alarm, _ in episodes:
        sc.alarm(tid, "route_deviation", t_alarm)
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 9 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"A route deviation on the M1 from Minsk to Brest, reported every 120 s. A few km past Stolbtsy the driver leaves "
        f"the M1 and follows a parallel local road about 3 km to the south for 14 km before rejoining it. That is one alarm, raised once two reports outside the 1000 m corridor span the 2 min "
        f"grace, and cleared (with --events) when the truck is back inside the corridor at about "
        f"{hhmm(episodes[0][1])}. Arrives in Kozlovichi at about {hhmm(entered(sim, Z['dest']))}.")


@scenario((f"{CORPUS}/suspected-jamming-spoofer-minsk-brest.json", False), (f"{EXAMPLES}/minsk-brest-jamming.json", True))
def jamming_spoofer(sc: Sc):
    c = MINSK_BREST
    Z = zones_of(c)
    t0 = epoch("2026-12-08T05:20:00Z")
    s_on = c.km("Dzerzhinsk", 14)
    s_w = c.km("Negoreloe", 12)
    warehouse = c.beside(s_w, -5000)
    p = build_path(c, sc.rng, Z, 15 * 60, [("mark", s_on, "on"), ("spur", s_w, warehouse, 30 * 60, "warehouse", 40)], dwell_s=30 * 60)
    dev = Device("BY-EL-020611", "elock", accuracy=True, seq=3300, battery=87, drain_per_h=0.4)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=0 if sc.coarse else 2,
                         keep_clear=lambda s: [(s.marks["on"] - 600, s.marks["on"] + 2 * 3600)])
    on = sim.marks["on"]
    last_real = max(epoch(o["t"]) for o in obs if epoch(o["t"]) < on)
    wa, wb = sim.stops["warehouse"]
    off = wb + 25 * 60
    relock = 11 * 60 + 20
    # The spoofed track: 40 km ahead of the last real fix when it appears 12 min later, then
    # moving along the route at a steady 78 km/h.
    s_last = next(r.s for r in sim.reports if r.t == last_real)
    appear = on + 12 * 60
    times = [r.t for r in sim.reports if appear <= r.t <= off]
    fake = []
    for t in times:
        s = s_last + 40_000 + 78 / 3.6 * (t - appear)
        q = shift(c.at(s), sc.rng.gauss(0, 8), sc.rng.gauss(0, 8))
        fake.append({"device": dev.id, "t": ts(t), "lat": rnd(q[1], 6), "lon": rnd(q[0], 6), "accuracy_m": 5,
                     "speed_kmh": 78, "course_deg": round(c.heading(s)), "lock": "locked",
                     "battery_pct": first_at(obs, t)["battery_pct"], "seq": 0})
    obs = drop(obs, on, off + relock) + fake
    obs.sort(key=lambda o: epoch(o["t"]))
    renumber(obs, dev.id)
    back = min(epoch(o["t"]) for o in obs if epoch(o["t"]) >= off + relock)
    tid = "T-BY-1208-02"
    sc.alarm(tid, "suspected_jamming", epoch(fake[0]["t"]), tol=1)
    sc.alarm(tid, "suspected_jamming", back, tol=1)
    s_fake_end = s_last + 40_000 + 78 / 3.6 * (times[-1] - appear)
    s_real = next(r.s for r in sim.reports if r.t == back)
    sc.zone(Z["dep"], Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 10 * 3600))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"A GNSS spoofer hides a detour. At {hhmm(on)}, past Dzerzhinsk, a spoofer in the cab is switched on: the e-lock loses "
        f"its fix and, as this model only reports with a valid fix, falls silent; it reappears "
        f"{(epoch(fake[0]['t']) - last_real) // 60} min after its last report, 40 km further on (the spoofed position, "
        f"{hhmm(epoch(fake[0]['t']))}), which no truck can reach in that time (over max_speed_kmh 150 after a "
        f"gap of at least jamming_gap PT10M): suspected_jamming, cleared by the next fix, which is consistent. The spoofed "
        f"track then runs along the M1 at 78 km/h while the real truck drives 5 km off the route to a warehouse and stays "
        f"there from {hhmm(wa)} to {hhmm(wb)}, unseen: no route deviation or illegal stay can be raised. At {hhmm(off)} the "
        f"spoofer is switched off; the device is silent again for {(back - epoch(fake[-1]['t'])) // 60} min and reappears at the real position "
        f"{(s_fake_end - s_real) / 1000:.0f} km behind the last spoofed one ({hhmm(back)}): suspected_jamming again, "
        f"cleared by the next fix. The speeds implied are far below the 1000 km/h of a cloned device. "
        f"{describe_outliers(outl)}")


# ------------------------------------------------------------------------------------------
# The seed report's case studies: Hong Kong's ITFS e-lock (air-to-road transhipment from the
# airport to the Lok Ma Chau control point) and Thai Customs' e-lock (Lat Krabang ICD to
# Laem Chabang port)
# ------------------------------------------------------------------------------------------


def tai_lam_tunnel(sim, obs):
    """No GNSS fix in Tai Lam Tunnel (3.8 km): the e-lock keeps reporting with `fix: false`.
    Returns the spell (t_in, t_out)."""
    a, b = sim.marks["tunnel in"], sim.marks["tunnel out"]
    no_fix(obs, a, b)
    return a, b


HK_TUNNEL_MARKS = [("mark", HKIA_LOK_MA_CHAU.km("Tai Lam Tunnel south"), "tunnel in"),
                   ("mark", HKIA_LOK_MA_CHAU.km("Tai Lam Tunnel north"), "tunnel out")]


@scenario((f"{EXAMPLES}/hkia-lok-ma-chau-clean.json", True))
def hkia_lok_ma_chau_clean(sc: Sc):
    c = HKIA_LOK_MA_CHAU
    Z = zones_of(c)
    t0 = epoch("2026-12-10T14:20:00Z")  # 22:20 in Hong Kong
    chk = Z["HK-FCA-CHK-LMC"]
    p = build_path(c, sc.rng, Z, 12 * 60, HK_TUNNEL_MARKS + [("visit", chk, 5 * 60, "permit check")], dwell_s=30 * 60,
                   meander=35.0)
    dev = Device("HK-EL-300417", "elock", accuracy=True, seq=5120, battery=94, drain_per_h=0.8)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1, interval=60, parked=300,
                         keep_clear=lambda s: [(s.marks["tunnel in"], s.marks["tunnel out"])])
    ta, tb = tai_lam_tunnel(sim, obs)
    arr = entered(sim, Z["dest"])
    off = sim.stops["destination"][0] + 4 * 60 + 12
    set_fields(obs, off, 10**10, lock="unlocked")
    insert_report(obs, dev.id, off, sc.rng, lock="unlocked")
    renumber(obs, dev.id)
    ca, cb = sim.stops["permit check"]
    sc.zone(Z["dep"], chk, Z["dest"])
    sc.transits.append(transit("T-HK-ITFS-261210-07", dev.id, c, Z, sealed_at=t0, deadline=t0 + 3 * 3600, corridor_m=500,
                               stop_zones=[chk],
                               vehicle={"plate": "LV 2815"},
                               cargo=[{"type": "Smartphone components", "hs_code": "851779", "quantity": 86, "unit": "PK",
                                       "origin": "KR", "consignee": "Shenzhen electronics assembler"}],
                               declaration={"number": "ITFS26121000417",
                                            "documents": [{"kind": "air_waybill", "reference": "160-58231744"}]}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sc.story = (
        f"Air-to-road transhipment under Hong Kong's Intermodal Transhipment Facilitation Scheme (ITFS). A shipment flown "
        f"into Hong Kong is loaded onto a cross-boundary truck at the SuperTerminal 1 air cargo terminal and the e-lock is "
        f"activated at {hhmm(t0)} (22:20 local); it reports every 60 s. The designated route (corridor 500 m) follows the "
        f"North Lantau Highway, the Lantau Link over the Kap Shui Mun and Tsing Ma bridges, Ting Kau Bridge and Route 3 "
        f"through Tai Lam Tunnel, then the San Tin Highway to the Lok Ma Chau control point, {c.length / 1000:.0f} km at "
        f"up to 64 km/h (goods vehicles are limited to 70 km/h). In Tai Lam Tunnel the e-lock keeps reporting without a "
        f"fix (\"fix\": false) from {hhmm(ta)} to {hhmm(tb)}, well under the 10 min no_fix_after limit. The truck halts "
        f"{(cb - ca) // 60} min at the police checkpoint of the Frontier Closed Area (a permitted stop zone), arrives at "
        f"Lok Ma Chau at about {hhmm(arr)}, and the e-lock is deactivated there at {hhmm(off)} (an authorised unseal "
        f"after arrival, ending supervision in Hong Kong). {describe_outliers(outl)} None of this may raise an alarm.")


@scenario((f"{EXAMPLES}/hkia-lok-ma-chau-detour-opening.json", True))
def hkia_lok_ma_chau_detour_opening(sc: Sc):
    c = HKIA_LOK_MA_CHAU
    Z = zones_of(c)
    t0 = epoch("2026-12-11T15:40:00Z")  # 23:40 in Hong Kong
    chk = Z["HK-FCA-CHK-LMC"]
    # Off Route 3 at Au Tau, east along Kam Tin Road to an open-storage container yard.
    via = [[114.04700, 22.44550], [114.05600, 22.44350], [114.06300, 22.44400], [114.06800, 22.44800]]
    yard = [114.07000, 22.45050]
    ev = HK_TUNNEL_MARKS + [("excursion", c.km("Au Tau"), via, yard, 11 * 60, "yard", 30),
                            ("visit", chk, 4 * 60, "permit check")]
    p = build_path(c, sc.rng, Z, 10 * 60, ev, dwell_s=90 * 60, meander=35.0)
    dev = Device("HK-EL-300562", "elock", accuracy=True, seq=880, battery=89, drain_per_h=0.8)
    sim, obs, _ = run(sc, p, t0, dev, interval=60, parked=300)
    ta, tb = tai_lam_tunnel(sim, obs)
    tid = "T-HK-ITFS-261211-12"
    ya, yb = sim.stops["yard"]
    o_a, o_b = ya + 2 * 60 + 14, ya + 8 * 60 + 51
    lock_window(obs, dev.id, o_a, o_b, sc.rng, lock="unlocked")
    episodes = deviation_alarms(sim, c.route(200), corridor_m=500)
    for t_alarm, _ in episodes:
        sc.alarm(tid, "route_deviation", t_alarm)
    sc.alarm(tid, "illegal_opening", o_a, tol=1)
    arr = entered(sim, Z["dest"])
    da = sim.stops["destination"][0]
    inspect = da + 6 * 60
    opened = inspect + 14 * 60 + 37
    done = opened + 55 * 60
    set_fields(obs, opened, 10**10, lock="unlocked")
    insert_report(obs, dev.id, opened, sc.rng, lock="unlocked")
    renumber(obs, dev.id)
    sc.actions.append(action(inspect, tid, "inspect", reason="ITFS irregularity: route deviation and e-lock opened at Kam Tin; selected for examination"))
    sc.actions.append(action(done, tid, "close", reason="examined at Lok Ma Chau; findings referred to the investigation unit"))
    sc.zone(Z["dep"], chk, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 3 * 3600, corridor_m=500, stop_zones=[chk],
                               vehicle={"plate": "RT 6281"},
                               cargo=[{"type": "Integrated circuits", "hs_code": "854231", "quantity": 42, "unit": "PK",
                                       "origin": "TW"}],
                               declaration={"number": "ITFS26121100912",
                                            "documents": [{"kind": "air_waybill", "reference": "297-40186523"}]}))
    sc.obs += obs
    sc.until = done + 10 * 60
    back = ", ".join(hhmm(b) for _, b in episodes if b)
    sc.story = (
        f"An ITFS air-to-road transhipment from the airport to Lok Ma Chau (e-lock activated at {hhmm(t0)}, 23:40 local, "
        f"reports every 60 s, designated route with a 500 m corridor). After Tai Lam Tunnel (no fix from {hhmm(ta)} to "
        f"{hhmm(tb)}, no alarm) the truck leaves Route 3 at Au Tau and drives 3 km east along Kam Tin Road to an "
        f"open-storage container yard, a non-designated area: route_deviation once two reports outside the corridor span "
        f"the 2 min grace. It stays {(yb - ya) // 60} min ({hhmm(ya)} to {hhmm(yb)}, under the 15 min of an illegal stay) "
        f"and the e-lock reports \"unlocked\" from {hhmm(o_a)} to {hhmm(o_b)}: illegal_opening, cleared when it is locked "
        f"again. The truck returns to Au Tau (the deviation clears at about {back}) and takes the San Tin Highway to Lok Ma "
        f"Chau, arriving at about {hhmm(arr)}. Customs selects the shipment for examination at {hhmm(inspect)} (inspect); "
        f"the officer opens the e-lock at {hhmm(opened)} (authorised by the inspection) and closes the transit at "
        f"{hhmm(done)}.")


@scenario((f"{EXAMPLES}/bangkok-laem-chabang-clean.json", True))
def bangkok_laem_chabang_clean(sc: Sc):
    c = BANGKOK_LAEM_CHABANG
    Z = zones_of(c)
    t0 = epoch("2026-12-14T01:30:00Z")  # 08:30 in Bangkok
    sa, tt = Z["TH-M7-SA-BANGPAKONG"], Z["TH-LCB-TRUCK-TERMINAL"]
    ev = [("jam", c.km("Rom Klao interchange", 0.5), c.km("Suvarnabhumi north", 1.0)), ("visit", sa, 35 * 60, "service area"),
          ("visit", tt, 75 * 60, "truck terminal")]
    p = build_path(c, sc.rng, Z, 20 * 60, ev, dwell_s=40 * 60)
    dev = Device("TH-EL-0218830", "elock", accuracy=True, seq=41022, battery=91, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=2, interval=120, parked=600)
    arr = entered(sim, Z["dest"])
    off = sim.stops["destination"][0] + 25 * 60
    set_fields(obs, off, 10**10, lock="unlocked")
    insert_report(obs, dev.id, off, sc.rng, lock="unlocked")
    renumber(obs, dev.id)
    stops = [Z["TH-M7-REST-LATKRABANG"], sa, Z["TH-M7-REST-NONGRI"], tt]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit("T-TH-LKB-261214-0917", dev.id, c, Z, sealed_at=t0, deadline=t0 + 6 * 3600, stop_zones=stops,
                               vehicle={"plate": "70-8215", "containers": [iso6346("EGHU915302")]},
                               cargo=[{"type": "Hard disk drives", "hs_code": "847170", "quantity": 1260, "unit": "CT",
                                       "origin": "TH"}],
                               declaration={"number": "A0026912004175"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    sa_a, sa_b = sim.stops["service area"]
    tt_a, tt_b = sim.stops["truck terminal"]
    sc.story = (
        f"A clean export movement under Thai Customs' e-lock from the Lat Krabang inland container depot to Laem Chabang "
        f"port on Motorway 7, {c.length / 1000:.0f} km, reporting every 120 s (every 10 min when parked). Sealed at "
        f"{hhmm(t0)} (08:30 local), the truck leaves the ICD into the morning stop-and-go traffic on the motorway past "
        f"Lat Krabang and Suvarnabhumi airport (halts well under 3 minutes), cruises at about 78 km/h, rests in the Bang "
        f"Pakong service area from {hhmm(sa_a)} to {hhmm(sa_b)} and waits for its gate slot in the port truck terminal "
        f"from {hhmm(tt_a)} to {hhmm(tt_b)} (both permitted stop zones), enters the port at about {hhmm(arr)} and the "
        f"e-lock is removed there at {hhmm(off)} (an authorised unseal after arrival). {describe_outliers(outl)} "
        f"None of this may raise an alarm.")


@scenario((f"{EXAMPLES}/bangkok-laem-chabang-illegal-stay.json", True))
def bangkok_laem_chabang_illegal_stay(sc: Sc):
    c = BANGKOK_LAEM_CHABANG
    Z = zones_of(c)
    t0 = epoch("2026-12-15T11:20:00Z")  # 18:20 in Bangkok
    nr, tt = Z["TH-M7-REST-NONGRI"], Z["TH-LCB-TRUCK-TERMINAL"]
    ev = [("visit", nr, 20 * 60, "rest stop"), ("shoulder", c.km("Bang Phra", 2.0), 42 * 60, "shoulder", 20),
          ("visit", tt, 40 * 60, "truck terminal")]
    p = build_path(c, sc.rng, Z, 20 * 60, ev, dwell_s=40 * 60)
    dev = Device("TH-EL-0219406", "elock", accuracy=True, seq=7730, battery=86, drain_per_h=0.6)
    sim, obs, outl = run(sc, p, t0, dev, n_outliers=1, interval=120, parked=600)
    tid = "T-TH-LKB-261215-0942"
    a, b = sim.stops["shoulder"]
    sc.alarm(tid, "illegal_stay", a + 15 * 60, tol=420)
    arr = entered(sim, Z["dest"])
    off = sim.stops["destination"][0] + 20 * 60
    set_fields(obs, off, 10**10, lock="unlocked")
    insert_report(obs, dev.id, off, sc.rng, lock="unlocked")
    renumber(obs, dev.id)
    stops = [Z["TH-M7-REST-LATKRABANG"], Z["TH-M7-SA-BANGPAKONG"], nr, tt]
    sc.zone(Z["dep"], *stops, Z["dest"])
    sc.transits.append(transit(tid, dev.id, c, Z, sealed_at=t0, deadline=t0 + 6 * 3600, stop_zones=stops,
                               vehicle={"plate": "70-6493", "containers": [iso6346("TGHU448120")]},
                               cargo=[{"type": "Air conditioner parts", "hs_code": "841590", "quantity": 540, "unit": "CT",
                                       "origin": "TH"}],
                               declaration={"number": "A0026912005508"}))
    sc.obs += obs
    sc.until = sim.end + 10 * 60
    ra, rb = sim.stops["rest stop"]
    sc.story = (
        f"An illegal stay on Motorway 7 at night. The e-lock is sealed at the Lat Krabang ICD at {hhmm(t0)} (18:20 local) "
        f"and reports every 120 s (every 10 min when parked). The driver rests in the Nong Ri rest stop from {hhmm(ra)} "
        f"to {hhmm(rb)} (a permitted stop zone), then past Bang Phra stops on the motorway shoulder, where the Department "
        f"of Highways forbids parking and no stop is permitted, from {hhmm(a)} to {hhmm(b)} (42 min): illegal_stay 15 min "
        f"after the stop began, cleared when the truck moves on. It waits in the port truck terminal (permitted), enters "
        f"Laem Chabang port at about {hhmm(arr)} and is unsealed there at {hhmm(off)}. {describe_outliers(outl)}")


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def build_all(only=None):
    docs = []
    for path, coarse, fn in SCENARIOS:
        if only and not any(o in path for o in only):
            continue
        sc = Sc(path, "", coarse)
        fn(sc)
        docs.append(sc)
    return docs


def replay(binary, path):
    res = subprocess.run([binary, "replay", path], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{path}: sealwatch replay exited {res.returncode}: {res.stderr}")
    return [json.loads(l) for l in res.stdout.splitlines() if l.strip()]


def check(sc: Sc, alarms):
    """Compares the replay's alarms with the scenario's expectations. Returns problems."""
    problems = []
    left = list(alarms)
    for e in sorted(sc.expect, key=lambda e: e.t):
        match = None
        for a in left:
            if a["transit"] == e.transit and a["kind"] == e.kind and (e.sensor is None or a.get("sensor") == e.sensor) \
                    and abs(epoch(a["t"]) - e.t) <= e.tol:
                match = a
                break
        if match:
            left.remove(match)
        else:
            problems.append(f"missing {e.kind} on {e.transit} at about {ts(e.t)} (±{e.tol // 60} min)")
    for a in left:
        problems.append(f"unexpected {a['kind']} on {a['transit']} at {a['t']}: {a['detail']}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="replay every file and compare with its expectations")
    ap.add_argument("--readme", action="store_true", help="rewrite examples/README.md from the replay output")
    ap.add_argument("--only", nargs="*", help="only scenarios whose path contains one of these")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "sealwatch"))
    args = ap.parse_args()
    docs = build_all(args.only)
    for sc in docs:
        text = dump(sc.document())
        full = os.path.join(ROOT, sc.path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{sc.path}: {len(sc.obs)} observations, {len(text) // 1024} KB")
    bad = 0
    if args.check or args.readme:
        for sc in docs:
            alarms = replay(args.binary, os.path.join(ROOT, sc.path))
            sc.alarms = alarms
            if args.check:
                problems = check(sc, alarms)
                status = "ok" if not problems else "DIFFERS"
                print(f"{status:8} {sc.path}: {len(alarms)} alarms")
                for p in problems:
                    print("         " + p)
                bad += bool(problems)
    if args.readme:
        write_readme([sc for sc in docs if sc.path.startswith(EXAMPLES)], args.binary)
    if bad:
        print(f"{bad} scenario(s) differ from their expectations")
        sys.exit(1)


EXAMPLE_SUMMARIES = {
    "contract-example": "The contract's own example (docs/scenario.md). D1 reports once and P1 is never read at the destination, so it ends in communication loss and journey timeouts.",
    "yiwu-ningbo-clean": "A clean journey with GNSS jitter and outliers, traffic lights, a rest in a service area; unlocked after arrival.",
    "minsk-brest-deviation": "Leaves the M1 for a parallel road for 14 km: one alarm, cleared when back in the corridor.",
    "mombasa-malaba-illegal-stay": "Two days on the Northern Corridor; a 50-min stop on the road shoulder near Salgaa.",
    "minsk-brest-overtime-stay": "2 h 40 in a rest area, then 3 h in the Brest border-queue buffer zone.",
    "yiwu-ningbo-illegal-opening": "The lock is opened in a lay-by and in a service area before arrival.",
    "mombasa-nairobi-journey-timeout": "A breakdown makes the truck late; an officer extends the limit, which passes too.",
    "mombasa-nairobi-communication-loss": "Two silences of 50 and 40 min in Tsavo, with comm_loss_after PT30M.",
    "almaty-khorgos-low-battery": "A cold battery drops below 15 %, is charged for 22 min, and drops again.",
    "minsk-brest-tamper": "Tamper and back-cover events during a night in a truck parking.",
    "yiwu-ningbo-unauthorized-action": "Wrong passwords and an unknown RFID card at two service areas.",
    "almaty-khorgos-device-fault": "The e-seal reports a fault twice.",
    "yiwu-ningbo-reefer-temperature": "A reefer's temperature leaves 2-8 °C twice (unit failure, long defrost).",
    "mombasa-malaba-fuel-theft": "Fuel siphoned at night in Naivasha and at lunch in Eldoret.",
    "minsk-brest-jamming": "A GNSS spoofer: the e-lock falls silent and reappears 40 km further on, then jumps back when it is switched off.",
    "yiwu-ningbo-smuggling": "A detour to a warehouse: route deviation, illegal stay, a cut rope (tamper, stays open) and an opened lock.",
    "yiwu-ningbo-cloned-seal": "A second device with the same identity reports from Hangzhou, twice.",
    "almaty-khorgos-checkpoint-mismatch": "A semi-active seal read at checkpoints: wrong container, then a broken seal.",
    "hkia-lok-ma-chau-clean": "Air-to-road transhipment (Hong Kong ITFS) over the Lantau Link and Route 3: no fix in Tai Lam Tunnel, a permit check; the e-lock is deactivated at Lok Ma Chau.",
    "hkia-lok-ma-chau-detour-opening": "Leaves Route 3 at Au Tau for a Kam Tin container yard where the e-lock is opened; examined at Lok Ma Chau.",
    "bangkok-laem-chabang-clean": "Lat Krabang ICD to Laem Chabang on Motorway 7: a morning jam, a rest at the Bang Pakong service area, a wait in the port truck terminal; unlocked in the port.",
    "bangkok-laem-chabang-illegal-stay": "A rest at the Nong Ri rest stop (permitted), then 42 min on the Motorway 7 shoulder near Bang Phra at night.",
}


def write_readme(examples, binary):
    """examples/README.md: every example, the command, and the alarms it prints (taken from
    the replay output, not from the expectations)."""
    names = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, EXAMPLES)) if f.endswith(".json"))
    built = {sc.name: sc for sc in examples}
    lines = [
        "# Examples",
        "",
        "Readable scenarios on real corridors: Yiwu -> Ningbo (G1512), Minsk -> Brest (M1), Mombasa -> Nairobi and",
        "Malaba (A109/A104, the Northern Corridor), Almaty -> Khorgos, Hong Kong airport -> Lok Ma Chau (air-to-road",
        "transhipment under the ITFS e-lock scheme, Route 3) and Bangkok (Lat Krabang ICD) -> Laem Chabang (Motorway 7).",
        "Each file's `description` says what it shows and which alarms to expect. The format is described in",
        "docs/scenario.md.",
        "",
        "Run one with:",
        "",
        "```sh",
        "cargo build -p sealwatch",
        "./target/debug/sealwatch replay examples/yiwu-ningbo-clean.json           # alarms, one JSON line each",
        "./target/debug/sealwatch replay --events examples/minsk-brest-deviation.json  # with lifecycle events and clearances",
        "```",
        "",
        "`NAME.expected` beside each example is its `replay --events` output, checked by",
        "`cargo test -p scenario --test corpus`. Except contract-example.json, the examples are written by",
        "`python3 tools/gen-scenarios/gen.py` (coarser versions of the corpus in testdata/scenarios/; reports every 3 to",
        "5 min). The table below is the actual output of `sealwatch replay` (kind, transit, time of each alarm).",
        "",
        "| Example | What it shows | Command | Alarms printed (kind, transit, time) |",
        "|---|---|---|---|",
    ]
    for name in names:
        path = os.path.join(ROOT, EXAMPLES, name + ".json")
        alarms = replay(binary, path)
        if alarms:
            cell = "<br>".join(f"`{a['kind']}`{' (' + a['sensor'] + ')' if a.get('sensor') else ''} {a['transit']} "
                               f"{a['t']}" for a in alarms)
        else:
            cell = "none"
        what = EXAMPLE_SUMMARIES.get(name) or (built[name].story.split(". ")[0] + "." if name in built else "")
        lines.append(f"| [{name}]({name}.json) | {what} | `sealwatch replay examples/{name}.json` | {cell} |")
    lines.append("")
    with open(os.path.join(ROOT, EXAMPLES, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("examples/README.md written")


if __name__ == "__main__":
    main()
