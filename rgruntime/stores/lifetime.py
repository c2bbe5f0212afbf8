"""What every store does with ``async with``: open once, close on leaving."""

from __future__ import annotations

from rgruntime.stores.errors import StoreError

__all__ = ["OpenedOnce"]


class OpenedOnce:
    """``async with store:`` opens a store once; leaving the block calls ``aclose()``.

    Reopening is refused: a closed store's connections and limiter are gone, and a new store object
    is as cheap as reopening would be.
    """

    _description: str
    _opened: bool = False

    def _open_once(self) -> None:
        if self._opened:
            raise StoreError(f"{self._description}: a store is opened once")
        self._opened = True

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError
