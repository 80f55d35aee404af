"""PyTorch twin of cae's recommended inspection recipe, for bench/anomaly_elpv.sh: the same
`inspect` network (conv-BN-ReLU encoder/decoder to a 1-channel sigmoid map; `inspect-unet` with
skip connections, `inspect-aligned` with the per-pixel z-score input), the same data rule
(grey, 128x128 triangle resize, each image scaled so its median is 0.5), the same synthetic
anomalies (dark Perlin blobs, foreign texture, random-walk cracks, axis-aligned thin lines with
--synthetic ...,line; half of the images), focal loss
(gamma 2), Adam with a cosine learning-rate schedule, the same epochs and batch, 20 % of train/
held out for the threshold (target FPR 0.05 on those normals only), and the same score (maximum of
the 9x9 mean-filtered map). It shows whether the Rust implementation limits the recipe.

usage: python anomaly_elpv_torch.py DATA [--epochs 30] [--batch 16] [--lr 1e-3] [--side 128]
       [--seed 1] [--threads 2] [--arch inspect|inspect-unet|inspect-aligned] [--crop N] [--flip]
       [--synthetic dark,texture,crack[,line]]
       [--json]
       (needs torch, numpy, pillow)
"""
import argparse, glob, json, math, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def load(folder, side):
    files = sorted(glob.glob(os.path.join(folder, '*.png')))
    if not files:
        sys.exit(f'error: no PNG images in {folder}')
    x = np.stack([np.asarray(Image.open(f).convert('L').resize((side, side), Image.BILINEAR),
                             np.float32) / 255 for f in files])
    med = np.median(x.reshape(len(x), -1), 1)
    return (x * (0.5 / np.maximum(med, 1e-6))[:, None, None]).astype(np.float32)


def perlin(h, w, cells, rng):
    ang = rng.uniform(0, 2 * np.pi, (cells + 1, cells + 1))
    g = np.stack([np.cos(ang), np.sin(ang)], -1)
    fy, fx = np.arange(h) * cells / h, np.arange(w) * cells / w
    yi, xi = fy.astype(int), fx.astype(int)
    ty, tx = np.meshgrid(fy - yi, fx - xi, indexing='ij')
    YI, XI = np.meshgrid(yi, xi, indexing='ij')
    dot = lambda dy, dx: g[YI + dy, XI + dx, 0] * (tx - dx) + g[YI + dy, XI + dx, 1] * (ty - dy)
    fade = lambda t: t * t * t * (t * (t * 6 - 15) + 10)
    u, v = fade(tx), fade(ty)
    top = dot(0, 0) * (1 - u) + dot(0, 1) * u
    bottom = dot(1, 0) * (1 - u) + dot(1, 1) * u
    return top * (1 - v) + bottom * v


def box(x, size):
    """Mean over size x size windows with reflect borders (scipy's uniform_filter)."""
    r = size // 2
    t = torch.from_numpy(np.ascontiguousarray(x))[:, None]
    t = F.pad(t, (r, r, r, r), mode='replicate' if r == 0 else 'reflect')
    return F.avg_pool2d(t, size, 1)[:, 0].numpy()


def blur(x, sigma):
    r = int(4 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2); k /= k.sum()
    p = np.pad(x, r, mode='symmetric')
    p = np.apply_along_axis(lambda v: np.convolve(v, k, 'valid'), 1, p)
    return np.apply_along_axis(lambda v: np.convolve(v, k, 'valid'), 0, p)


def crack(h, w, rng):
    a = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.uniform(0, h), rng.uniform(0, w)
        heading = rng.uniform(0, 2 * np.pi)
        steps = rng.integers(max(h // 6, 2), max(3 * h // 2, 3))
        width = rng.uniform(0.5, 1.5)
        wiggle = rng.uniform(0.03, 0.45)
        for _ in range(steps):
            heading += rng.uniform(-wiggle, wiggle)
            y += math.sin(heading); x += math.cos(heading)
            if not (0 <= y < h and 0 <= x < w):
                continue
            iy, ix = int(y), int(x)
            ys, xs = np.mgrid[max(iy - 2, 0):min(iy + 3, h), max(ix - 2, 0):min(ix + 3, w)]
            d = np.hypot(ys - y, xs - x)
            a[ys, xs] = np.maximum(a[ys, xs], np.clip(width + 0.5 - d, 0, 1))
    return a


def line(h, w, rng):
    """1-4 straight segments along an image axis, 0.4-1.5 px wide, drawn by coverage (cae's `line`)."""
    a = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(1, 5)):
        vertical = rng.random() < 0.5
        across, along = (w, h) if vertical else (h, w)
        length = rng.integers(max(along // 10, 2), max(along // 2, 3))
        start = rng.integers(0, max(along - length, 1))
        width = rng.uniform(0.4, 1.5)
        centre = rng.uniform(1.0, max(across - 1.0, 1.5))
        low, high = centre - width / 2, centre + width / 2
        for c in range(max(int(math.floor(low)), 0), min(int(math.ceil(high)), across)):
            cover = float(np.clip(min(high, c + 1) - max(low, c), 0, 1))
            seg = a[start:start + length, c] if vertical else a[c, start:start + length]
            np.maximum(seg, cover, out=seg)
    return a


KINDS = ('dark', 'texture', 'crack', 'line')


def synth(img, donors, rng, kinds=('dark', 'texture', 'crack'), p=0.5):
    h, w = img.shape
    none = np.zeros_like(img)
    if rng.random() >= p:
        return img, none
    kind = KINDS.index(kinds[rng.integers(0, len(kinds))])
    if kind == 2:
        alpha = crack(h, w, rng); target = (alpha > 0.3).astype(np.float32)
    elif kind == 3:
        alpha = line(h, w, rng); target = (alpha > 0.15).astype(np.float32)
    else:
        field = perlin(h, w, 1 << rng.integers(1, 5), rng)
        hard = (field > rng.uniform(0.2, 0.5)).astype(np.float32)
        alpha = blur(hard, 0.7).astype(np.float32)
        target = (alpha > 0.5).astype(np.float32)
        alpha[box(target[None], 5)[0] < 0.5 / 25] = 0
    if target.sum() < 4:
        return img, none
    if kind != 1:
        depth = rng.uniform(0.3, 0.9) if kind == 2 else rng.uniform(0.2, 0.8)
        return img * (1 - depth * alpha), target
    if rng.random() < 0.5:
        t = np.rot90(donors[rng.integers(len(donors))], rng.integers(4))
        t = np.roll(t, (-rng.integers(h), -rng.integers(w)), (0, 1))
    else:
        mean = img.mean()
        t = np.maximum(mean + rng.uniform(0.5, 2.0) * max(mean, 0.1) * perlin(h, w, 1 << rng.integers(2, 6), rng), 0)
    a = rng.uniform(0.3, 1.0) * alpha
    return (img * (1 - a) + a * t).astype(np.float32), target


def block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())


class ZScore(nn.Module):
    """cae's `zscore` layer: the image, then its per-pixel z-score against the training images'
    mean and std (std + floor), clipped to +-8 and divided by 4."""
    def __init__(self, train, floor=0.02):
        super().__init__()
        self.register_buffer('mean', torch.from_numpy(train.mean(0)[None].astype(np.float32)))
        self.register_buffer('std', torch.from_numpy(train.std(0)[None].astype(np.float32)))
        self.floor = floor

    def forward(self, x):
        z = ((x - self.mean) / (self.std + self.floor)).clamp(-8.0, 8.0) / 4.0
        return torch.cat([x, z], 1)


class Inspect(nn.Module):
    """The `inspect` preset: 4 scales of two conv-BN-ReLU, nearest upsampling, 1x1 sigmoid head;
    with `train` images, `inspect-aligned`: a ZScore layer fitted to them first."""
    def __init__(self, base=16, train=None):
        super().__init__()
        c = base
        up = lambda: nn.Upsample(scale_factor=2, mode='nearest')
        first = [] if train is None else [ZScore(train)]
        self.net = nn.Sequential(*first, block(1 if train is None else 2, c), nn.MaxPool2d(2), block(c, 2 * c), nn.MaxPool2d(2),
                                 block(2 * c, 4 * c), nn.MaxPool2d(2), block(4 * c, 4 * c),
                                 up(), block(4 * c, 2 * c), up(), block(2 * c, c), up(), block(c, c),
                                 nn.Conv2d(c, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


class InspectUnet(nn.Module):
    """The `inspect-unet` preset: `inspect` with each decoder scale's upsampled flow joined by the
    encoder's volume of that scale (flow first), then the pair; 1x1 sigmoid head."""
    def __init__(self, base=16):
        super().__init__()
        c = base
        self.e1, self.e2, self.e3, self.e4 = block(1, c), block(c, 2 * c), block(2 * c, 4 * c), block(4 * c, 4 * c)
        self.d3, self.d2, self.d1 = block(8 * c, 2 * c), block(4 * c, c), block(2 * c, c)
        self.head = nn.Sequential(nn.Conv2d(c, 1, 1), nn.Sigmoid())

    def forward(self, x):
        pool, up = (lambda t: F.max_pool2d(t, 2)), (lambda t: F.interpolate(t, scale_factor=2, mode='nearest'))
        e1 = self.e1(x)
        e2 = self.e2(pool(e1))
        e3 = self.e3(pool(e2))
        e4 = self.e4(pool(e3))
        d3 = self.d3(torch.cat([up(e4), e3], 1))
        d2 = self.d2(torch.cat([up(d3), e2], 1))
        d1 = self.d1(torch.cat([up(d2), e1], 1))
        return self.head(d1)


def focal(p, y, gamma=2.0):
    p = p.clamp(1e-6, 1 - 1e-6)
    return -(y * (1 - p) ** gamma * p.log() + (1 - y) * p ** gamma * (1 - p).log()).mean()


def auroc(s, y):
    s, y = np.asarray(s, float), np.asarray(y, bool)
    pos, neg = s[y], s[~y]
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return gt / (len(pos) * len(neg))


def average_precision(s, y):
    order = np.argsort(-np.asarray(s)); y = np.asarray(y, bool)[order]
    tp = np.cumsum(y); precision = tp / np.arange(1, len(y) + 1)
    return float((precision * y).sum() / max(y.sum(), 1))


def fpr_threshold(normal, target):
    """cae's rule: the order statistic whose expected FPR (k+1)/(n+1) is the largest <= target."""
    s = np.sort(normal); n = len(s)
    k = max(int(math.floor(target * (n + 1) - 1 + 1e-9)), 0)
    return s[n - 1 - k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('data')
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--side', type=int, default=128)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--synthetic', default='dark,texture,crack', help=f'painters, any of {",".join(KINDS)} (cae --synthetic)')
    ap.add_argument('--arch', choices=['inspect', 'inspect-unet', 'inspect-aligned'], default='inspect')
    ap.add_argument('--crop', type=int, default=0, help='train on random CROPxCROP crops (0: whole images)')
    ap.add_argument('--flip', action='store_true', help='mirror each training image left-right and up-down, each with probability 1/2 (cae --augment flip)')
    a = ap.parse_args()
    kinds = tuple(k.strip() for k in a.synthetic.split(',') if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        sys.exit(f'error: --synthetic {a.synthetic}: use any of {",".join(KINDS)}')
    if a.crop and a.arch == 'inspect-aligned':
        sys.exit('error: --crop with --arch inspect-aligned: its z-score statistics are per position of the whole image')
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train = load(os.path.join(a.data, 'train'), a.side)
    perm = rng.permutation(len(train)); nv = int(round(0.2 * len(train)))
    val, train = train[perm[:nv]], train[perm[nv:]]
    normal = load(os.path.join(a.data, 'test', 'normal'), a.side)
    abnormal = load(os.path.join(a.data, 'test', 'abnormal'), a.side)
    net = (InspectUnet() if a.arch == 'inspect-unet'
           else Inspect(train=train) if a.arch == 'inspect-aligned' else Inspect())
    opt = torch.optim.Adam(net.parameters(), a.lr, eps=1e-8)
    started = time.time()
    for epoch in range(a.epochs):
        for g in opt.param_groups:
            g['lr'] = a.lr * 0.5 * (1 + math.cos(math.pi * epoch / a.epochs))
        order = rng.permutation(len(train))
        net.train()
        for i in range(0, len(order), a.batch):
            def mirror(img):
                if a.flip:
                    img = img[:, ::-1] if rng.random() < 0.5 else img
                    img = img[::-1, :] if rng.random() < 0.5 else img
                return np.ascontiguousarray(img)
            if a.crop:
                def cut(img):
                    y, x = rng.integers(0, a.side - a.crop + 1, 2)
                    return img[y:y + a.crop, x:x + a.crop]
                batch = [mirror(cut(train[j])) for j in order[i:i + a.batch]]
                donors = [cut(train[j]) for j in rng.integers(0, len(train), 8)]
                xs, ms = zip(*[synth(b, donors, rng, kinds) for b in batch])
            else:
                xs, ms = zip(*[synth(mirror(train[j]), train, rng, kinds) for j in order[i:i + a.batch]])
            x = torch.from_numpy(np.stack(xs)[:, None].copy())
            m = torch.from_numpy(np.stack(ms)[:, None].copy())
            loss = focal(net(x), m)
            opt.zero_grad(); loss.backward(); opt.step()
    minutes = (time.time() - started) / 60
    net.eval()

    def maps(x):
        with torch.no_grad():
            return torch.cat([net(torch.from_numpy(x[i:i + 32, None].copy())) for i in range(0, len(x), 32)])[:, 0].numpy()

    def score(x):
        return box(maps(x), 9).reshape(len(x), -1).max(1)

    threshold = fpr_threshold(score(val), 0.05)
    s = np.r_[score(normal), score(abnormal)]
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    pred = s > threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    precision = tp / max(tp + fp, 1); recall = tp / max(y.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    out = dict(image_auroc=float(auroc(s, y)), image_aupr=average_precision(s, y), f1=f1,
               precision=precision, recall=recall, fpr=fp / max((~y).sum(), 1), minutes=minutes)
    print(json.dumps(out) if a.json else
          ' '.join(f'{k} {v:.4f}' for k, v in out.items()))


if __name__ == '__main__':
    main()
