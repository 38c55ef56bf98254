//! The simulator's texts: business names, and reviews that report a risk,
//! deny one, complain of something else or praise, in Chinese and English.

use super::pick;
use crate::types::{Category, Domain};
use rand_chacha::ChaCha8Rng;

pub(super) fn business_name(rng: &mut ChaCha8Rng, d: Domain) -> String {
    let a = pick(
        rng,
        &[
            "老王", "川味", "金牌", "小城", "阿婆", "湘里", "东北", "江南", "福满", "好运",
        ],
    );
    let b = match d {
        Domain::Food => pick(
            rng,
            &[
                "面馆",
                "烧烤",
                "快餐",
                "火锅",
                "饺子馆",
                "麻辣烫",
                "小炒",
                "粥铺",
            ],
        ),
        Domain::Tourism => pick(
            rng,
            &[
                "大酒店",
                "宾馆",
                "民宿",
                "快捷酒店",
                "客栈",
                "旅行社",
                "度假村",
            ],
        ),
    };
    format!("{a}{b}")
}

pub(super) fn risk_text(rng: &mut ChaCha8Rng, domain: Domain, c: Category, en: bool) -> String {
    let food = domain == Domain::Food;
    let core = if en {
        match c {
            Category::Illness => pick(
                rng,
                &[
                    "I got food poisoning after eating here",
                    "threw up all night after the meal",
                    "we all had diarrhea the next day",
                ],
            ),
            Category::ForeignObject => pick(
                rng,
                &[
                    "found a hair in my noodles",
                    "there was a cockroach in the soup",
                    "a dead fly in the rice",
                ],
            ),
            Category::Spoilage => pick(
                rng,
                &[
                    "the meat was spoiled",
                    "the milk had expired",
                    "the vegetables were rotten",
                ],
            ),
            Category::Undercooked => pick(
                rng,
                &["the chicken was raw inside", "the pork was undercooked"],
            ),
            Category::Hygiene if food => pick(
                rng,
                &["the kitchen was filthy", "saw a rat near the tables"],
            ),
            Category::Hygiene => pick(
                rng,
                &["sheets were dirty and stained", "the bathroom was filthy"],
            ),
            Category::Safety => pick(
                rng,
                &[
                    "the balcony railing was loose and my kid got injured",
                    "got an electric shock from the shower",
                ],
            ),
            Category::PriceFraud => pick(
                rng,
                &[
                    "we were overcharged at checkout",
                    "they charged twice and there were hidden charges",
                ],
            ),
            Category::FalseAdvertising => pick(
                rng,
                &[
                    "the room looks nothing like the pictures",
                    "the pool was not as advertised",
                ],
            ),
            Category::ForcedConsumption => pick(
                rng,
                &[
                    "forced shopping: the guide made us buy jade",
                    "it was forced shopping all day",
                ],
            ),
            Category::ConsumerRights => pick(
                rng,
                &[
                    "they refused to refund the cancelled booking",
                    "no refund even though we cancelled early",
                ],
            ),
        }
    } else {
        match c {
            Category::Illness => pick(
                rng,
                &[
                    "吃完回家就拉肚子了",
                    "晚上上吐下泻，怀疑食物中毒",
                    "全家吃完肚子疼，去医院挂了急诊",
                    "吃了以后一直呕吐",
                ],
            ),
            Category::ForeignObject => pick(
                rng,
                &[
                    "汤里有一根头发",
                    "饭里吃出一只苍蝇",
                    "菜里居然有蟑螂",
                    "面里吃出钢丝球的钢丝",
                ],
            ),
            Category::Spoilage => pick(
                rng,
                &[
                    "肉有股馊味，明显变质了",
                    "饮料过期了",
                    "米饭都馊了",
                    "菜已经发霉",
                ],
            ),
            Category::Undercooked => pick(rng, &["鸡肉没熟，里面还带血", "牛排夹生", "饺子没煮熟"]),
            Category::Hygiene if food => pick(
                rng,
                &[
                    "后厨很脏，餐具也不干净",
                    "桌上有老鼠跑过",
                    "碗没洗干净，卫生太差",
                ],
            ),
            Category::Hygiene => pick(
                rng,
                &[
                    "床单有污渍，卫生很差",
                    "房间有霉味，马桶脏",
                    "浴室有蟑螂，毛巾脏",
                ],
            ),
            Category::Safety => pick(
                rng,
                &[
                    "浴室漏电，差点触电",
                    "阳台栏杆松动，孩子摔伤了",
                    "门锁坏了锁不上，很不安全",
                ],
            ),
            Category::PriceFraud => pick(
                rng,
                &[
                    "退房时乱收费，多收了两百",
                    "结账被宰，价格欺诈",
                    "押金不退，还额外收费",
                ],
            ),
            Category::FalseAdvertising => pick(
                rng,
                &[
                    "房间与图片不符，虚假宣传",
                    "宣传的海景房根本看不到海，与宣传不符",
                    "实物和描述不符，照骗",
                ],
            ),
            Category::ForcedConsumption => pick(
                rng,
                &[
                    "导游强制购物，不买不让走",
                    "一天跑了三个购物点，强迫消费",
                    "被迫购物，强行推销玉器",
                ],
            ),
            Category::ConsumerRights => pick(
                rng,
                &[
                    "取消订单拒绝退款",
                    "到店没房，还拒绝赔偿",
                    "投诉无门，不给退款",
                ],
            ),
        }
    };
    let opener = match (food, en) {
        (true, true) => pick(
            rng,
            &[
                "",
                "Ordered here last week. ",
                "Taste was ok but ",
                "Second visit: ",
            ],
        ),
        (true, false) => pick(
            rng,
            &[
                "",
                "味道还行，就是",
                "第二次来了，",
                "本来挺期待的，结果",
                "点了外卖，",
            ],
        ),
        (false, true) => pick(
            rng,
            &[
                "",
                "Stayed two nights. ",
                "Location is fine but ",
                "Booked for the family: ",
            ],
        ),
        (false, false) => pick(
            rng,
            &[
                "",
                "位置还行，就是",
                "第二次入住了，",
                "本来挺期待的，结果",
                "带家人来玩，",
            ],
        ),
    };
    let closer = if en {
        pick(rng, &["", " Never again.", " Reported to the platform."])
    } else {
        pick(
            rng,
            &["", "，再也不来了", "，已经投诉", "！！", "，大家注意"],
        )
    };
    format!("{opener}{core}{closer}")
}

pub(super) fn denial_text(rng: &mut ChaCha8Rng, d: Domain, en: bool) -> String {
    match (d, en) {
        (Domain::Food, false) => pick(
            rng,
            &[
                "吃了好几次都没有拉肚子，放心",
                "很干净，没有头发之类的",
                "担心会拉肚子，结果一点事没有",
                "食材新鲜，不会有变质的问题",
            ],
        ),
        (Domain::Food, true) => pick(
            rng,
            &[
                "Clean place, we did not get sick at all",
                "no hair, no bugs, very clean",
            ],
        ),
        (Domain::Tourism, false) => pick(
            rng,
            &[
                "房间很干净，不脏",
                "没有乱收费，价格透明",
                "导游不强制购物，很好",
                "怕有虫子，结果很干净",
            ],
        ),
        (Domain::Tourism, true) => pick(
            rng,
            &[
                "The room was not dirty at all",
                "no hidden fees, honest staff",
            ],
        ),
    }
    .to_owned()
}

pub(super) fn complaint_text(rng: &mut ChaCha8Rng, d: Domain, en: bool) -> String {
    match (d, en) {
        (Domain::Food, false) => pick(
            rng,
            &[
                "太难吃了",
                "送餐太慢了，等了一个多小时",
                "分量太少，价格偏贵",
                "味道一般，太咸了",
                "难吃得快吐了",
                "包装洒了一半",
            ],
        ),
        (Domain::Food, true) => pick(
            rng,
            &[
                "Too salty and overpriced",
                "Delivery took forever",
                "Bland food",
            ],
        ),
        (Domain::Tourism, false) => pick(
            rng,
            &[
                "隔音太差了",
                "前台态度一般",
                "位置有点偏，打车不方便",
                "早餐品种太少",
                "价格有点贵，性价比不高",
                "隔壁那家酒店床单很脏，还好这家还行",
            ],
        ),
        (Domain::Tourism, true) => pick(
            rng,
            &[
                "Noisy room and slow wifi",
                "Breakfast was boring",
                "A bit pricey for what you get",
            ],
        ),
    }
    .to_owned()
}

pub(super) fn praise_text(rng: &mut ChaCha8Rng, d: Domain, en: bool) -> String {
    match (d, en) {
        (Domain::Food, false) => pick(
            rng,
            &[
                "很好吃，会再来",
                "送餐很快，味道不错",
                "性价比高，推荐",
                "老味道，一直支持",
                "分量足，好吃",
            ],
        ),
        (Domain::Food, true) => pick(
            rng,
            &["Delicious, will order again", "Fast delivery and tasty"],
        ),
        (Domain::Tourism, false) => pick(
            rng,
            &[
                "房间宽敞明亮，服务热情",
                "位置很好，交通方便",
                "早餐丰富，推荐入住",
                "性价比很高，下次还来",
            ],
        ),
        (Domain::Tourism, true) => pick(
            rng,
            &[
                "Great location and friendly staff",
                "Comfortable bed, will stay again",
            ],
        ),
    }
    .to_owned()
}
