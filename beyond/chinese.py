"""The Chinese notebook's words for what its code draws: the plots, the video captions, the progress bar.

Plots and captions need a font with Chinese characters. Where none is installed, the
figures keep their English words (instead of boxes) and use_chinese() says which
package to install; the progress bar is drawn by the browser, which has one.
"""

from beyond import watching

PROGRESS = dict(
    unit=" 环境步",
    episode="第 {done} 回合，共 {of} 回合",
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
    final="最终贪心回报 {final:.1f}：高于 `{command}` 的 {n} 次参考运行中的 {below} 次（中位数 {median:.1f}）",
    no_reference="这些设置没有参考运行，没有可比较的对象（docs/normal-run.zh-CN.md 列出了有参考运行的设置）",
)
BAND = dict(band="{n} 次参考运行：中位数与 10%–90% 区间", run="这次运行", y="学习视频各副本的贪心回报", x="环境步数")
CAPTION = "{env_steps:,} 个环境步之后（第 {episode} 回合）：贪心回报 {total:.0f}"
INSTALL_A_FONT = (
    "没有找到中文字体，图和视频里的文字保持英文。"
    "装一个中文字体（Debian/Ubuntu：sudo apt install fonts-noto-cjk），删除 matplotlib 的字体缓存后重启内核即可。"
)


def use_chinese(log=print):
    """Draw with Chinese words where a Chinese font is installed: matplotlib falls back on it for them.

    Returns (plot words, value-plot words, caption): Chinese, or English where no font has Chinese.
    """
    from matplotlib import rcParams

    font = watching.cjk_font()
    if font is None:
        log(INSTALL_A_FONT)
        return {}, {}, watching.CAPTION
    if font[0] not in rcParams["font.family"]:
        rcParams["font.family"] = [*rcParams["font.family"], font[0]]
    return PLOT, VALUES, CAPTION


def translated(figure, words):
    """figure with every title and axis label put into words, a {English: Chinese} mapping of phrases."""
    for ax in figure.axes:
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            phrase = text.get_text()
            for english in sorted(words, key=len, reverse=True):  # longest first: "episode reward" before "episode"
                phrase = phrase.replace(english, words[english])
            text.set_text(phrase)
    return figure
