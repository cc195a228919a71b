"""Reference data for the China PII pack: surnames and province codes.

Surnames: the common single-character surnames of mainland China (the list covers the
~400 most frequent, which together account for well over 95 % of the population), plus
the compound surnames still in use. Province codes: the two-digit prefixes of the
administrative-division codes in GB/T 2260 (provinces, autonomous regions,
municipalities) and 71/81/82/83 (Taiwan, Hong Kong, Macau; the latter three also
appear on residence permits for those residents, which follow GB 11643).
"""

from __future__ import annotations

__all__ = ["SINGLE_SURNAMES", "COMPOUND_SURNAMES", "PROVINCES"]

_SINGLE = (
    "王李张刘陈杨黄吴赵周徐孙马朱胡林郭何高罗郑梁谢宋唐许邓冯韩曹曾彭萧蔡潘田董袁于余叶蒋"
    "杜苏魏程吕丁沈任姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江阎薛尹段雷黎史龙"
    "陶贺顾毛郝龚邵万钱严赖覃洪武莫孔汤向常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷"
    "詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳"
    "管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷"
    "晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花"
    "权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄"
    "邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利呼居揭干但"
    "尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由肖闫殳濮蓬郗牛葛滑汲糜鲁晋"
)

SINGLE_SURNAMES: frozenset[str] = frozenset(_SINGLE)

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {
        "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
        "宇文", "司徒", "夏侯", "轩辕", "令狐", "钟离", "闻人", "南宫", "端木", "独孤",
        "西门", "澹台", "公冶", "太史", "申屠", "司空", "呼延", "百里", "东郭", "第五",
        "公羊", "万俟", "赫连", "拓跋", "鲜于", "闾丘", "子车", "谷梁", "濮阳", "淳于",
    }
)  # fmt: skip

PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西",
    "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门", "83": "台湾(居住证)",
}  # fmt: skip
