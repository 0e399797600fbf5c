"""The seed lesson's code examples (module 3: tensors and autograd), shared by the tests."""

#: the computational-graph picture: x -> y = x * 2 -> z = y + 3 -> loss = z.sum() -> backward
SEED_CELL = """\
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
z = y + 3
loss = z.sum()
loss.backward()
"""

#: "Understanding autograd": x.grad is [10., 14., 18.] afterwards
SEED_SECOND = """\
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = torch.tensor([4.0, 5.0, 6.0])
z = x + y
out = z * z
out.backward(torch.tensor([1.0, 1.0, 1.0]))
print('Gradient of x:', x.grad)
"""
