"""Synthetic rosters of any size: the real Annex 1 rows first, then made-up Guangzhou institutions.

Names follow the patterns of the real roster (district people's hospitals with
ordinals, community health centres by street, township health centres, specialist
hospitals and clinics) and about half get a short alias, so the name index grows
the way a provincial roster would.  Deterministic for a given size and seed.
"""

from __future__ import annotations

import csv
import random
from dataclasses import replace
from pathlib import Path

from pipeline.config import Campaign
from pipeline.domain.matching import normalise
from pipeline.domain.roster import DISTRICTS, Institution, Roster, load_roster

_PLACE_TEXT = (
    "东山 北京 华林 人民 光塔 六榕 洪桥 大新 珠光 白云 登峰 建设 农林 矿泉 黄花 梅花 新港 滨江 素社 海幢 "
    "南华 龙凤 沙园 凤阳 瑞宝 江海 琶洲 南石 昌岗 赤岗 多宝 逢源 华林 金花 彩虹 西村 南源 岭南 沙面 冲口 "
    "石门 林和 沙河 五山 员村 车陂 石牌 棠下 天园 猎德 冼村 前进 元岗 龙洞 长兴 凤凰 珠吉 新塘 黄村 三元 "
    "松洲 景泰 同德 黄石 京溪 永平 嘉禾 鹤龙 石井 均禾 人和 太和 钟落 江高 萝岗 夏港 联和 永和 长岭 九佛 "
    "市桥 沙头 东环 桥南 钟村 大石 洛浦 南村 石壁 化龙 石楼 沙湾 新造 新华 秀全 狮岭 炭步 赤坭 花山 梯面 "
    "南沙 珠江 黄阁 横沥 万顷 东涌 大岗 榄核 街口 城郊 江埔 鳌头 太平 温泉 良口 吕田 荔城 增江 朱村 石滩"
)
_EXTRA_CHARS = (
    "安宁和平康福泰兴隆盛丰华明德昌茂瑞祥永乐嘉庆富源金桂荔枝榕桥溪湖岭沙洲岗塘东南西北青龙凤松竹梅"
)
_ORDINALS = "一二三四五六七八九十"
_SPECIALTIES = (
    "中医",
    "妇产",
    "口腔",
    "眼科",
    "骨科",
    "康复",
    "精神",
    "肿瘤",
    "儿童",
    "中西医结合",
    "皮肤",
    "心血管",
)
_CLINICS = ("门诊部", "诊所", "卫生站", "健康驿站")


def chinese_number(n: int) -> str:
    """1..99 in Chinese numerals (第二十三)."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _ORDINALS[tens - 1] + "十")
    return head + (_ORDINALS[ones - 1] if ones else "")


def _places(rng: random.Random) -> list[str]:
    pool = list(dict.fromkeys(_PLACE_TEXT.split()))
    pool += [a + b for a in _EXTRA_CHARS for b in _EXTRA_CHARS if a != b]
    rng.shuffle(pool)
    return pool


def _candidates(rng: random.Random):  # noqa: ANN202 - a generator of (name, district, channel, aliases)
    places = _places(rng)
    for n in range(1, 100):
        for district in DISTRICTS:
            number = chinese_number(n)
            yield f"广州市{district}区第{number}人民医院", district, "direct", (f"{district}{number}院",)
    for i, place in enumerate(places):
        district = DISTRICTS[i % len(DISTRICTS)]
        yield f"广州市{district}区{place}街社区卫生服务中心", district, "bureau", (f"{district}{place}社卫",)
        yield f"广州市{district}区{place}镇卫生院", district, "bureau", ()
        specialty = _SPECIALTIES[i % len(_SPECIALTIES)]
        yield f"广州{place}{specialty}医院", "", "direct", (f"{place}{specialty}",)
        clinic = _CLINICS[i % len(_CLINICS)]
        yield f"广州市{district}区{place}{clinic}", district, "bureau", ()
        other = DISTRICTS[(i * 7 + 3) % len(DISTRICTS)]
        yield f"广州市{other}区{place}社区卫生服务站", other, "bureau", ()


def synthetic_institutions(real: list[Institution], size: int, *, seed: int = 8) -> list[Institution]:
    """`real` followed by made-up rows up to `size` rows; no name or alias collides with another."""
    taken = {normalise(text) for inst in real for text in (inst.name, *inst.aliases)}
    rows = list(real)
    next_row = max(i.row for i in real) + 1
    for name, district, channel, aliases in _candidates(random.Random(seed)):
        if len(rows) >= size:
            break
        texts = [normalise(name), *(normalise(a) for a in aliases)]
        if any(t in taken for t in texts):
            continue
        taken.update(texts)
        rows.append(Institution(next_row, name, district, channel, aliases, None, "bench"))
        next_row += 1
    if len(rows) < size:
        raise RuntimeError(f"only {len(rows)} distinct synthetic names; asked for {size}")
    return rows


def write_roster_csv(institutions: list[Institution], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("row", "name", "district", "channel", "aliases", "same_as", "note"))
        for i in institutions:
            writer.writerow(
                (i.row, i.name, i.district, i.channel, ";".join(i.aliases), i.same_as or "", i.note)
            )


def campaign_of_size(campaign: Campaign, size: int, folder: Path) -> Campaign:
    """The campaign with its roster replaced by a CSV of `size` rows written into `folder`."""
    real = load_roster(campaign)
    institutions = real.institutions if size <= len(real) else synthetic_institutions(real.institutions, size)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"roster-{size}.csv"
    write_roster_csv(institutions, path)
    return replace(campaign, roster=path)


def roster_of_size(campaign: Campaign, size: int, folder: Path) -> Roster:
    return load_roster(campaign_of_size(campaign, size, folder))
