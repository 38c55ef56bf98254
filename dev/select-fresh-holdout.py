#!/usr/bin/env python3
# Chooses the fresh held-out set (docs/labelling-fresh-holdout.md) from the corpora in
# ../shared/data: run from the project root. Prints the counts; writes the choice to
# /tmp/label/selection.json (outside the repository). Reserve records (index a multiple of
# 3) are never candidates.
import csv, random, json, os
FOOD = "拉肚 腹泻 拉稀 闹肚 厕所 吐 呕 胃 肚子 疼 痛 难受 不舒服 医院 诊所 中毒 过敏 病 药 恶心 发烧 发热 头发 毛 虫 苍蝇 蟑螂 蚂蚁 异物 钢丝 铁丝 塑料 石头 沙 玻璃 创可贴 指甲 吃出 硌 渣 纸 绳 馊 变质 坏 臭 酸 霉 过期 新鲜 隔夜 剩 味道不对 怪味 异味 有味 腥 生的 生肉 半生 没熟 不熟 夹生 血 脏 卫生 干净 老鼠 洗 手套 苍 蛆 黑".split()
TOUR = "脏 干净 卫生 污 渍 头发 毛 虫 蟑螂 跳蚤 老鼠 蚊 霉 异味 怪味 臭 烟味 潮 湿 床单 被子 马桶 受伤 摔 滑 漏电 触电 电线 插座 火 冒烟 锁 偷 盗 丢 煤气 危险 安全 烫 砸 掉 多收 乱收 加收 扣 多算 押金 宰 收费 结账 账单 价格 钱 退 不符 名不副实 虚假 照片 图片 宣传 号称 骗 上当 实际 星级 强制 强迫 强行 必须 最低消费 购物 推销 捆绑 硬 非要 小费 服务费 被迫 加钱 发票 没房 无房 赔偿 拒绝 不肯 投诉 报警 预订 确认 取消 升级".split()
def load(f):
    return list(csv.DictReader(open(f'../shared/data/{f}.csv', encoding='utf-8')))
out = {}
for f, kws, seed, nr, npre in [('waimai_10k', FOOD, 20261207, 660, 140), ('ChnSentiCorp_htl_all', TOUR, 20261208, 400, 400)]:
    rows = load(f)
    taken = {int(r['index']) for r in csv.DictReader(open(f'dev/labels/{f}.csv'))} | {int(r['index']) for r in csv.DictReader(open(f'dev/labels/holdout/{f}.csv'))}
    free = [i for i in range(len(rows)) if i % 3 and i not in taken]
    hits = [i for i in free if any(k in rows[i]['review'] for k in kws)]
    print(f, 'free', len(free), 'prefilter hits', len(hits))
    rng = random.Random(seed)
    rand = sorted(rng.sample(free, nr))
    pool = [i for i in hits if i not in set(rand)]
    pre = sorted(rng.sample(pool, npre))
    out[f] = {'random': rand, 'prefiltered': pre, 'hits': hits, 'free': free}
    print(' random part prefilter-hit share', sum(1 for i in rand if i in set(hits))/nr)
os.makedirs("/tmp/label", exist_ok=True)
json.dump(out, open("/tmp/label/selection.json", "w"))
