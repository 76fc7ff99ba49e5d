import { createTheme } from '@mui/material';

export const theme = createTheme({
  palette: {
    primary: { main: '#0b5c6b' },
    secondary: { main: '#8a4f7d' },
    background: { default: '#f6f8f9' },
  },
  shape: { borderRadius: 8 },
});
