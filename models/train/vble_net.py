"""Small hyperprior compressive autoencoder with a decoder standard deviation, the prior of
VBLE-xz (Biquard, Chabert, Genin, Latry, Oberlin, "Deep priors for satellite image
restoration with accurate uncertainties", arXiv:2412.04130, 2024; VBLE: Biquard et al.,
"Variational Bayes image restoration with compressive autoencoders", 2023), written here
from the papers' description (mean-scale hyperprior of Minnen et al. 2018 / Balle et al. 2018).

Model (x: [N, 1, H, W] in [0, 1]; H, W multiples of STRIDE = 16):
- g_a: conv5x5/2 (1->C) LReLU, conv5x5/2 (C->C) LReLU, conv5x5/2 (C->M)       z: [N, M, H/8, W/8]
- h_a: conv3x3/1 (M->M) LReLU, conv5x5/2 (M->Ch)                              h: [N, Ch, H/16, W/16]
- h_s: convT5x5/2 (Ch->M) LReLU, conv3x3/1 (M->2M) -> (mu, r), s = 0.11 + softplus(r)
- g_s: convT5x5/2 (M->C) LReLU, convT5x5/2 (C->C) LReLU, then two heads convT5x5/2 (C->1):
  mean x_mean and sigma = sigmoid(t) + 2e-4 (sigma_theta of VBLE-xz).
LReLU = leaky ReLU of slope 0.1. Every convolution has padding 2 (5x5) or 1 (3x3); the
transposed ones output_padding 1, so sizes halve / double exactly.

Entropy model (densities of continuous latents, in nats):
- p(z | h) = prod N(mu, s^2) * U(-1/2, 1/2):  P = Phi((1/2 - |z-mu|)/s) - Phi((-1/2 - |z-mu|)/s)
  (the symmetric form keeps the tails in the lower half of Phi, which is computed from a
  relative-accuracy erfc approximation, `erfc_pos`, instead of 1 + erf);
- p(h) = prod_c Logistic(m_c, t_c) * U(-1/2, 1/2), one learned location m_c and scale
  t_c = exp(log_t_c) per channel:  P = sig((1/2 - |h-m|)/t) - sig((-1/2 - |h-m|)/t)
  (sig computed from exp(-|.|), accurate in the tail, `sigmoid_exp`)
  (a closed-form factorized density instead of Balle's learned monotone CDF).
- rate(z, h) = sum -log(P_z + 1e-9) + sum -log(P_h + 1e-9)  (the 1e-9 is a smooth floor that
  keeps the log finite; its derivative is exact, unlike a clamp).

The hand-written vector-Jacobian products (`DecodeVJP`, `RateWithGrad`) recompute the forward
pass and apply each layer's adjoint: conv2d <-> conv_transpose2d with the same weights,
leaky-ReLU masks, sigmoid'/softplus' and the closed-form derivatives of the likelihoods
(phi = Gaussian density, sig' = sig (1 - sig)). They use only ops that export to plain ONNX.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SLOPE = 0.1
LIK_EPS = 1e-9
SCALE_MIN = 0.11
SIGMA_MIN = 2e-4
STRIDE = 16
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def lrelu(t):
    return F.leaky_relu(t, SLOPE)


def lrelu_back(pre, g):
    return torch.where(pre > 0, g, SLOPE * g)


def conv_back(g, conv):
    """Adjoint (w.r.t. the input) of a stride-s Conv2d with 'same'-halving padding."""
    s = conv.stride[0]
    return F.conv_transpose2d(g, conv.weight, stride=s, padding=conv.padding[0],
                              output_padding=s - 1)


def convT_back(g, convT):
    """Adjoint (w.r.t. the input) of a ConvTranspose2d: the conv2d with the same weights."""
    return F.conv2d(g, convT.weight, stride=convT.stride[0], padding=convT.padding[0])


def erfc_pos(u):
    """erfc(u) for u >= 0 with relative error < 1.2e-7 (the Chebyshev-fitted formula of Press
    et al., Numerical Recipes, 'erfcc'); built from exp only, so it stays accurate deep in the
    tail where 1 - erf(u) cancels in float32."""
    t = 1.0 / (1.0 + 0.5 * u)
    p = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
              0.37409196, 1.00002368, -1.26551223):
        p = c + t * p
    return t * torch.exp(-u * u + p)


def Phi(t):
    """Standard normal CDF, accurate (relatively) in the lower tail:
    Phi(t) = erfc(-t/sqrt2)/2 for t <= 0 and 1 - erfc(t/sqrt2)/2 for t > 0."""
    q = 0.5 * erfc_pos(t.abs() * INV_SQRT2)
    return torch.where(t > 0, 1.0 - q, q)


def phi(t):
    return INV_SQRT2PI * torch.exp(-0.5 * t * t)


def gauss_lik(z, mu, s):
    v = (z - mu).abs()
    return Phi((0.5 - v) / s) - Phi((-0.5 - v) / s)


def sigmoid_exp(x):
    """Logistic function from Exp only, relatively accurate for large negative x (onnxruntime's
    Sigmoid kernel saturates its input near -18, which spoils the far tail of p(h))."""
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logistic_lik(h, m, t):
    v = (h - m).abs()
    return sigmoid_exp((0.5 - v) / t) - sigmoid_exp((-0.5 - v) / t)


class VbleNet(nn.Module):
    def __init__(self, C=48, M=32, Ch=24):
        super().__init__()
        self.C, self.M, self.Ch = C, M, Ch
        self.ga1 = nn.Conv2d(1, C, 5, 2, 2)
        self.ga2 = nn.Conv2d(C, C, 5, 2, 2)
        self.ga3 = nn.Conv2d(C, M, 5, 2, 2)
        self.ha1 = nn.Conv2d(M, M, 3, 1, 1)
        self.ha2 = nn.Conv2d(M, Ch, 5, 2, 2)
        self.hs1 = nn.ConvTranspose2d(Ch, M, 5, 2, 2, output_padding=1)
        self.hs2 = nn.Conv2d(M, 2 * M, 3, 1, 1)
        self.gs1 = nn.ConvTranspose2d(M, C, 5, 2, 2, output_padding=1)
        self.gs2 = nn.ConvTranspose2d(C, C, 5, 2, 2, output_padding=1)
        self.gs_mean = nn.ConvTranspose2d(C, 1, 5, 2, 2, output_padding=1)
        self.gs_sig = nn.ConvTranspose2d(C, 1, 5, 2, 2, output_padding=1)
        self.h_loc = nn.Parameter(torch.zeros(Ch))
        self.h_logscale = nn.Parameter(torch.zeros(Ch))
        with torch.no_grad():
            self.gs_sig.bias.fill_(-3.0)

    # forward pieces -------------------------------------------------------------------
    def g_a(self, x):
        return self.ga3(lrelu(self.ga2(lrelu(self.ga1(x)))))

    def h_a(self, z):
        return self.ha2(lrelu(self.ha1(z)))

    def h_s(self, h):
        o = self.hs2(lrelu(self.hs1(h)))
        mu, r = o[:, :self.M], o[:, self.M:]
        return mu, SCALE_MIN + F.softplus(r)

    def g_s_feat(self, z):
        return lrelu(self.gs2(lrelu(self.gs1(z))))

    def g_s(self, z):
        f = self.g_s_feat(z)
        return self.gs_mean(f), torch.sigmoid(self.gs_sig(f)) + SIGMA_MIN

    def h_params(self):
        shp = (1, self.Ch, 1, 1)
        return self.h_loc.view(shp), torch.exp(self.h_logscale).view(shp)

    def rate_terms(self, z, h):
        """Elementwise -log p(z|h) and -log p(h) (nats)."""
        mu, s = self.h_s(h)
        m, t = self.h_params()
        rz = -torch.log(gauss_lik(z, mu, s) + LIK_EPS)
        rh = -torch.log(logistic_lik(h, m, t) + LIK_EPS)
        return rz, rh

    def rate(self, z, h):
        rz, rh = self.rate_terms(z, h)
        return rz.sum() + rh.sum()


# exported modules ----------------------------------------------------------------------

class Encode(nn.Module):
    """x [1,1,H,W] -> z [1,M,H/8,W/8], h [1,Ch,H/16,W/16] (continuous, unrounded)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        z = self.net.g_a(x)
        return z, self.net.h_a(z)


class Decode(nn.Module):
    """z -> x_mean [1,1,H,W], sigma [1,1,H,W]."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z):
        return self.net.g_s(z)


class DecodeVJP(nn.Module):
    """(z, g_mean, g_sigma) -> dz = J_mean(z)^T g_mean + J_sigma(z)^T g_sigma."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z, g_mean, g_sigma):
        n = self.net
        f1 = n.gs1(z)
        a1 = lrelu(f1)
        f2 = n.gs2(a1)
        a2 = lrelu(f2)
        sg = torch.sigmoid(n.gs_sig(a2))
        g_t = g_sigma * sg * (1.0 - sg)
        g_a2 = convT_back(g_mean, n.gs_mean) + convT_back(g_t, n.gs_sig)
        g_a1 = convT_back(lrelu_back(f2, g_a2), n.gs2)
        return convT_back(lrelu_back(f1, g_a1), n.gs1)


class RateWithGrad(nn.Module):
    """(z, h) -> rate [1] (nats, -log p(z|h) - log p(h)), d rate/dz, d rate/dh."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z, h):
        n = self.net
        M = n.M
        # hyper-synthesis
        f1 = n.hs1(h)
        a1 = lrelu(f1)
        o = n.hs2(a1)
        mu, r = o[:, :M], o[:, M:]
        s = SCALE_MIN + F.softplus(r)
        # p(z | h)
        d = z - mu
        v = d.abs()
        a = (0.5 - v) / s
        b = (-0.5 - v) / s
        pa, pb = phi(a), phi(b)
        Pz = Phi(a) - Phi(b) + LIK_EPS
        wz = -1.0 / Pz  # d(-log Pz)/dPz
        gz = wz * torch.sign(d) * (pb - pa) / s
        g_s = wz * (b * pb - a * pa) / s
        g_r = g_s * torch.sigmoid(r)
        g_o = torch.cat([-gz, g_r], dim=1)
        g_h = convT_back(lrelu_back(f1, conv_back(g_o, n.hs2)), n.hs1)
        # p(h)
        m, t = n.h_params()
        dh = h - m
        vh = dh.abs()
        sa = sigmoid_exp((0.5 - vh) / t)
        sb = sigmoid_exp((-0.5 - vh) / t)
        Ph = sa - sb + LIK_EPS
        g_hd = (-1.0 / Ph) * torch.sign(dh) * (sb * (1.0 - sb) - sa * (1.0 - sa)) / t
        rate = (-torch.log(Pz)).sum() + (-torch.log(Ph)).sum()
        return rate.reshape(1), gz, g_h + g_hd

