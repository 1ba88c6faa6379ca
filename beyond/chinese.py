"""The Chinese notebook's words for what its code draws: the plots, the video captions, the progress display.

Plots and captions need a font with Chinese characters. Where none is installed, the
figures keep their English words (instead of boxes) and use_chinese() says which
package to install; the progress display is drawn by the browser, which has one.
"""

from beyond import overlay

PROGRESS = dict(
    filling="正在填充经验回放：{filled:,} / {needed:,} 条转移，填满后开始学习",
    learning="正在学习：第 {done:,} 回合（最多 {of:,} 回合）· {env_steps:,} 个环境步 · 每秒 {rate:,.0f} 个环境步",
    finished=(
        "训练了 {episodes} 个回合：{env_steps:,} 个环境步，{learn_steps:,} 次学习，"
        "用时 {wall_s:.1f} 秒（每秒 {rate:,.0f} 个环境步，torch 线程数 {threads}）"
    ),
)
PLOT = {
    "DQN on CartPole: the episodes since learning started": "CartPole 上的 DQN：开始学习之后的回合",
    "(dashed lines: the moments the learning video shows)": "（虚线：学习视频展示的时刻）",
    "episode reward": "回合奖励",
    "steps (pole up)": "步数（杆子立住）",
    "episode": "回合",
}
VALUES = dict(believes="网络认为的价值", gets="实际得到的回报", x="环境步数", y="折扣后的塑形回报")
PLACEMENT = dict(
    final="最终贪心回报 {final:.1f}：高于 `{command}` 的 {n} 次参考运行中的 {below} 次{tied}（中位数 {median:.1f}）",
    tied="，与 {tied} 次持平",
    no_reference="这些设置没有参考运行，没有可比较的对象（docs/normal-run.zh-CN.md 列出了有参考运行的设置）",
)
BAND = dict(band="{n} 次参考运行：中位数与 10%–90% 区间", run="这次运行", y="学习视频各副本\n的贪心回报", x="环境步数")
CAPTION = "{env_steps:,} 个环境步之后（第 {episode} 回合）：贪心回报 {total:.0f}"
# overlay.WORDS in Chinese: the lines it prints (any terminal shows them), then what the videos draw (a font must)
PRINTED = dict(
    watched="观看第 {i}/{n} 回合：{summary}",
    pole_up="杆子立住了 {steps} 步",
    returned="{steps} 步，回报 {total:g}",
    learning_part="学习过程视频：{caption}",
)
DRAWN = dict(
    q_values="Q 值（贪心动作：{action}）",
    step="第 {step} 步",
    episode="第 {episode} 回合，共 {episodes} 回合",
    network_sees="网络看到的画面：",
    caption=CAPTION,
    names={"push left": "向左推", "push right": "向右推", "cart x": "小车位置", "pole": "杆子角度"},
)
INSTALL_A_FONT = (
    "没有找到中文字体，图和视频里的文字保持英文。"
    "装一个中文字体（Debian/Ubuntu：sudo apt install fonts-noto-cjk），删除 matplotlib 的字体缓存后重启内核即可。"
)


def use_chinese(log=print):
    """Draw with Chinese words where a Chinese font is installed: matplotlib falls back on it for them.

    Returns (plot words, value-plot words, video words): Chinese, or English where no font has
    Chinese; the lines the videos print are Chinese either way.
    """
    from matplotlib import rcParams

    printed = {**overlay.WORDS, **PRINTED}
    font = overlay.cjk_font()
    if font is None:
        log(INSTALL_A_FONT)
        return {}, {}, printed
    if font[0] not in rcParams["font.family"]:
        rcParams["font.family"] = [*rcParams["font.family"], font[0]]
    return PLOT, VALUES, {**printed, **DRAWN}


def translated(figure, words):
    """figure with every title and axis label put into words, a {English: Chinese} mapping of phrases."""
    for ax in figure.axes:
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            phrase = text.get_text()
            for english in sorted(words, key=len, reverse=True):  # longest first: "episode reward" before "episode"
                phrase = phrase.replace(english, words[english])
            text.set_text(phrase)
    return figure
