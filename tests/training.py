"""Helpers shared by the model tests."""
import torch


def tiny_batch_losses(model: torch.nn.Module, inputs: tuple, y: torch.Tensor, steps: int = 25,
                      lr: float = 3e-3) -> list[float]:
    """Train ``model(*inputs)`` on one fixed batch with AdamW; the loss after every step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(*inputs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
