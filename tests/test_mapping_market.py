"""An equipment firm's segment named after its market is not a plant (issue #20: 禾望's 风力发电 72% was a wind farm)."""

from __future__ import annotations

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.industries import market_label
from matcher.knowledge.mapping import LinkMapper
from matcher.records import Enterprise, Product


def _links(industry: str, *products: tuple[str, float]) -> set[str]:
    mapper = LinkMapper(default_catalogue())
    e = Enterprise(id="t", name="某电气股份有限公司", sw_industry=industry,
                   products=[Product(name=p, share=s) for p, s in products])
    return {m.link_id for m in mapper.map(e) if m.score >= 0.8}


def test_equipment_maker_market_segment_is_not_a_wind_farm():
    got = _links("风电零部件", ("风电变流器", 0.8), ("风力发电", 0.72), ("光伏发电", 0.06))
    assert "wind_converter" in got
    assert "wind_farm" not in got and "pv_power_station" not in got


def test_operating_words_and_other_industries_keep_the_plant():
    assert "wind_farm" in _links("风电零部件", ("风电场运营", 0.1))  # it runs wind farms
    assert "wind_farm" in _links("风电整机", ("风力发电", 0.1))  # turbine makers develop wind farms
    assert "wind_farm" in _links("电力", ("风力发电", 0.6))  # a utility


def test_market_label_needs_a_generation_link():
    assert not market_label("风电零部件", "风电变流器", "风电变流器", ("3415",))
    assert market_label("逆变器", "光伏发电行业", "光伏电站|光伏发电", ("4416",))


def test_a_turbine_maker_s_wind_generator_is_its_turbine():
    assert "wind_turbine" in _links("风电整机", ("风力发电机", 0.98))
    assert "wind_generator" in _links("风电零部件", ("风力发电机", 0.6))  # a component maker's is the generator


def test_a_negated_segment_names_no_product():
    mapper = LinkMapper(default_catalogue())
    assert mapper.map_product("非油田化学品") == [] and mapper.map_product("非油田用化学品") == []
    assert mapper.map_product("非织造布")[0].link_id == "nonwoven"  # the term itself starts with 非
    assert mapper.map_product("油田化学品")[0].link_id == "oilfield_chemicals"


def test_a_gas_utility_s_natural_gas_is_the_gas_it_distributes():
    """Independent review s9: 浩源天然气's 天然气业务 read as 天然气开采 made 阿克苏's 油田技术服务 a gap."""
    got = _links("燃气Ⅲ", ("天然气业务", 0.87), ("天然气销售", 0.83))
    assert "city_gas" in got and "natural_gas" not in got
    assert "natural_gas" in _links("燃气Ⅲ", ("天然气开采", 0.8))  # a segment that says it extracts
    assert "natural_gas" in _links("油气开采Ⅲ", ("天然气", 0.6))  # other industries read the literal link


def test_a_chip_firm_s_wafer_is_no_solar_wafer():
    """Realistic judgement s10: 上海贝岭 (模拟芯片设计) listed as a 光伏硅片 maker by its 硅片加工 11%."""
    assert "silicon_wafer" not in _links("模拟芯片设计", ("集成电路", 0.6), ("硅片加工", 0.11))
    assert "silicon_wafer" in _links("光伏硅片", ("单晶硅片", 0.9))
