# PyTorch reference for the fashion_mnist example: the same CNN (conv 1→16, BN, ReLU, pool;
# conv 16→32, BN, ReLU, pool; linear 1568→128, ReLU; linear 128→10), Adam, the same batch
# size, timed over the same number of training steps on the same data (random batches).
#   python3 torch_ref.py [batch] [steps] [threads]
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 128
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
if len(sys.argv) > 3:
    torch.set_num_threads(int(sys.argv[3]))
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.fc1, self.fc2 = nn.Linear(32 * 7 * 7, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


net = Net()
opt = torch.optim.Adam(net.parameters(), 1e-3)
x = torch.rand(batch, 1, 28, 28)
y = torch.randint(0, 10, (batch,))
for i in range(steps + 3):
    if i == 3:
        start = time.perf_counter()
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    loss.item()
took = time.perf_counter() - start
print("torch %s threads=%d batch=%d steps=%d: %.2f ms/step, %.0f samples/s, %.1f s per 60k-sample epoch"
      % (torch.__version__, torch.get_num_threads(), batch, steps, 1000 * took / steps, batch * steps / took, 60000 / (batch * steps / took)))
