"""Admin-1 boundaries as SVG paths: projected, simplified, cached.

The registry ships Natural Earth admin-1 polygons (``boundaries_admin1.geojson``,
pre-2025 Viet Nam). For a map of some countries this module projects their polygons
(equirectangular, longitudes scaled by the cosine of the middle latitude) into a box
``WIDTH`` wide, simplifies each ring (Douglas-Peucker at ``TOLERANCE`` pixels), rounds
to whole pixels (``DECIMALS``; the SVG scales) and drops rings smaller than
``MIN_RING_AREA`` square pixels: the whole region then weighs about 70 kB rather than
the file's 470 kB.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from epibridge.web.areas import registry_unit

WIDTH = 600.0
TOLERANCE = 0.6
DECIMALS = 0
MIN_RING_AREA = 1.5
SOURCE = "Natural Earth admin-1 (public domain), pre-2025 Viet Nam"

Ring = list[tuple[float, float]]


@dataclass(frozen=True)
class Shape:
    code: str  # the boundary unit's registry code
    country: str  # ISO3
    path: str  # SVG path data in the map's pixels
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Outline:
    width: float
    height: float
    shapes: tuple[Shape, ...]


@functools.cache
def _features() -> tuple[tuple[str, str, tuple[tuple[Ring, ...], ...]], ...]:
    """(code, country, polygons) of every boundary feature; polygons are tuples of rings."""
    text = (
        resources.files("epibridge.registry")
        .joinpath("data", "geography", "boundaries_admin1.geojson")
        .read_text(encoding="utf-8")
    )
    out = []
    for feature in json.loads(text)["features"]:
        code = feature["properties"]["code"]
        geometry = feature["geometry"]
        polygons = (
            geometry["coordinates"]
            if geometry["type"] == "MultiPolygon"
            else [geometry["coordinates"]]
        )
        unit = registry_unit(code)
        country = unit.country if unit is not None else code[:2]
        rings = tuple(
            tuple([(float(x), float(y)) for x, y in ring] for ring in polygon)
            for polygon in polygons
        )
        out.append((code, country, rings))
    return tuple(out)


def boundary_codes() -> frozenset[str]:
    return frozenset(code for code, _, _ in _features())


def _simplify(points: Ring, tolerance: float) -> Ring:
    """Douglas-Peucker, iterative (rings of thousands of points would recurse deeply)."""
    if len(points) < 4:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        (x1, y1), (x2, y2) = points[first], points[last]
        dx, dy = x2 - x1, y2 - y1
        norm = math.hypot(dx, dy)
        worst, index = -1.0, -1
        for i in range(first + 1, last):
            px, py = points[i]
            if norm == 0:
                distance = math.hypot(px - x1, py - y1)
            else:
                distance = abs(dy * px - dx * py + x2 * y1 - y2 * x1) / norm
            if distance > worst:
                worst, index = distance, i
        if index >= 0 and worst > tolerance:
            keep[index] = True
            stack.extend([(first, index), (index, last)])
    return [p for p, kept in zip(points, keep, strict=True) if kept]


def _area(ring: Ring) -> float:
    return abs(
        sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True))
        / 2
    )


def _num(value: float) -> str:
    return f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".") if DECIMALS else f"{value:.0f}"


def _path(rings: Sequence[Ring]) -> str:
    parts = []
    for ring in rings:
        points: list[str] = []
        for x, y in ring:
            point = f"{_num(x)} {_num(y)}"
            if not points or points[-1] != point:
                points.append(point)
        if len(points) >= 3:
            parts.append("M" + "L".join(points) + "Z")
    return "".join(parts)


@functools.cache
def outline(countries: tuple[str, ...]) -> Outline:
    """The boundaries of ``countries`` (ISO3, sorted) in SVG pixels, ``WIDTH`` wide."""
    chosen = [f for f in _features() if f[1] in countries]
    points = [p for _, _, polygons in chosen for polygon in polygons for p in polygon[0]]
    if not points:
        return Outline(WIDTH, WIDTH / 2, ())
    west, east = min(x for x, _ in points), max(x for x, _ in points)
    south, north = min(y for _, y in points), max(y for _, y in points)
    stretch = math.cos(math.radians((south + north) / 2))
    scale = WIDTH / max((east - west) * stretch, 1e-9)
    height = (north - south) * scale

    def project(ring: Ring) -> Ring:
        return [((x - west) * stretch * scale, (north - y) * scale) for x, y in ring]

    shapes = []
    for code, country, polygons in chosen:
        rings: list[Ring] = []
        for polygon in polygons:
            for ring in polygon:
                projected = _simplify(project(ring), TOLERANCE)
                if _area(projected) >= MIN_RING_AREA:
                    rings.append(projected)
        if not rings:
            continue
        unit = registry_unit(code)
        if unit is not None and unit.lon is not None and unit.lat is not None:
            lx, ly = project([(unit.lon, unit.lat)])[0]
        else:
            biggest = max(rings, key=_area)
            lx = sum(x for x, _ in biggest) / len(biggest)
            ly = sum(y for _, y in biggest) / len(biggest)
        shapes.append(Shape(code, country, _path(rings), round(lx, 1), round(ly, 1)))
    return Outline(WIDTH, round(height, 1), tuple(shapes))
