import { createTheme } from '@mui/material';

export const theme = createTheme({
  palette: {
    primary: { main: '#0b5c6b' },
    secondary: { main: '#8a4f7d' },
    background: { default: '#f6f8f9' },
    // Darker than Material's default orange, so that white text on it stays readable (WCAG AA).
    warning: { main: '#8a4b00' },
  },
  shape: { borderRadius: 8 },
});
