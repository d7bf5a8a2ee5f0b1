"""Test oracle: InDiReCT's DimRedRecon fit (SPEC 2) written in PyTorch, as the reference would run it.

Texts x_i (random, L2-normalised, float32), U (k x d) initialised N(0, 0.1^2); loss = mean_i
arccos(clamp(x_i . xhat_i, -1 + 1e-6, 1 - 1e-6)) with v_i = normalize(U x_i), xhat_i = normalize(U^T v_i);
full-batch torch.optim.Adam(lr=0.01); the best U is kept; stop after 100 iterations without improvement.
Image vectors = normalize(U_best . normalize(f)).
Writes OUT_DIR/{texts,u0,best_u,images,image_vectors}.npy and OUT_DIR/fit.json (loss curve, best).
Usage: python indirect_fit.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

CLAMP = 1e-6


def loss_of(x, u):
    v = F.normalize(x @ u.T, dim=1)
    xhat = F.normalize(v @ u, dim=1)
    c = (x * xhat).sum(1)
    return torch.acos(torch.clamp(c, -1 + CLAMP, 1 - CLAMP)).mean()


def fit(x, u0, lr=0.01, patience=100, max_iter=100000):
    u = torch.nn.Parameter(u0.clone())
    opt = torch.optim.Adam([u], lr=lr)
    best, best_u, best_it, since, curve = float("inf"), None, 0, 0, []
    for it in range(max_iter):
        opt.zero_grad()
        loss = loss_of(x, u)
        curve.append(loss.item())
        if loss.item() < best:
            best, best_u, best_it, since = loss.item(), u.detach().clone(), it, 0
        else:
            since += 1
            if since >= patience:
                break
        loss.backward()
        opt.step()
    return best_u, best, best_it, curve


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    n, d, k = 59, 96, 16  # like ("synthetic_cars", "car_color"): 59 texts; a small CLIP width
    x = F.normalize(torch.randn(n, d) + 0.3 * torch.randn(1, d), dim=1)
    u0 = torch.randn(k, d) * 0.1
    best_u, best, best_it, curve = fit(x, u0)
    images = torch.randn(7, d) * 3.0
    vectors = F.normalize(F.normalize(images, dim=1) @ best_u.T, dim=1)
    for name, t in (("texts", x), ("u0", u0), ("best_u", best_u), ("images", images), ("image_vectors", vectors)):
        np.save(os.path.join(out, name + ".npy"), t.numpy().astype(np.float32))
    with open(os.path.join(out, "fit.json"), "w") as f:
        json.dump({"loss": curve, "best_loss": best, "best_iter": best_it, "iterations": len(curve)}, f)
    print(f"DimRedRecon: {len(curve)} iterations, best loss {best:.6f} at {best_it}")


if __name__ == "__main__":
    main(sys.argv[1])
